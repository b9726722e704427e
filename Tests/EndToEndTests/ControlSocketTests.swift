import Daemon
import Foundation
import SwiftNFSTesting
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The operator's commands reach the running server through its control socket
/// (STATE-DIR/control, root only): answers of the moment, no signals, no waiting on files.
@Suite("Control socket", .serialized)
struct ControlSocketTests {
    @Test("root-only socket while serving, gone after; exports reload, checkpoint, refusals; the server keeps serving")
    func commands() async throws {
        var (durable, second, exportsFile, socket) = ("", "", "", "")
        try await ServerProcess.with(portmap: .none, configure: { server in
            durable = server.root.appendingPathComponent("durable").path
            second = server.root.appendingPathComponent("second").path
            try FileManager.default.createDirectory(atPath: second, withIntermediateDirectories: true)
            exportsFile = server.root.appendingPathComponent("exports").path
            try "\(server.exportPath) 127.0.0.1(rw,insecure,no_root_squash)\n".write(toFile: exportsFile, atomically: true, encoding: .utf8)
            server.exportsFile = exportsFile
            server.extraArguments = ["--durable-dir", durable, "--checkpoint-seconds", "3600"]
            socket = ControlClient.socketPath(stateDirectory: server.stateDir)
        }) { server in
            let swiftnfsd = server.binary.path
            var st = stat()
            #expect(lstat(socket, &st) == 0 && st.st_mode & S_IFMT == S_IFSOCK, "no control socket at \(socket)")
            #expect(st.st_mode & 0o777 == 0o600, "control socket mode \(String(st.st_mode & 0o777, radix: 8)), not 0600")

            // A second export appears on request, without a signal.
            try "\(server.exportPath) 127.0.0.1(rw,insecure,no_root_squash)\n\(second) 127.0.0.1(rw,insecure)\n"
                .write(toFile: exportsFile, atomically: true, encoding: .utf8)
            let reload = try await Tools.runChecked(swiftnfsd, ["exports", "reload", "--state-dir", server.stateDir]).stdout
            #expect(reload.contains("exported: \(second)"), "swiftnfsd exports reload: \(reload)")
            let client = try await server.nfsClient(machine: "control")
            _ = try await client.mount(second)

            // A broken exports file: refused with the reason, the table in force stays.
            try "\(second) 127.0.0.1(rw,bogus_option)\n".write(toFile: exportsFile, atomically: true, encoding: .utf8)
            let refused = try await Tools.run(swiftnfsd, ["exports", "reload", "--state-dir", server.stateDir])
            #expect(!refused.succeeded && refused.stdout.contains("error: exports not reloaded"), "\(refused)")
            _ = try await client.mount(server.exportPath)

            // A checkpoint on request answers when it is done.
            let checkpoint = try await Tools.runChecked(swiftnfsd, ["checkpoint", "--durable-dir", durable]).stdout
            #expect(checkpoint.hasPrefix("checkpointed through record "), "swiftnfsd checkpoint: \(checkpoint)")

            // Unknown and over-long commands are refused; the server goes on answering.
            let unknown = try ControlClient.send("format-disk", to: socket, timeoutSeconds: 5)
            #expect(unknown?.hasPrefix("error: unknown command \"format-disk\"") == true, "\(unknown ?? "no answer")")
            let long = try ControlClient.send(String(repeating: "x", count: 10_000), to: socket, timeoutSeconds: 5)
            #expect(long?.hasPrefix("error: command longer than") == true, "\(long ?? "no answer")")
            let stats = try ControlClient.send("stats", to: socket, timeoutSeconds: 5)
            #expect(stats.flatMap(ServerStatistics.init(text:))?.pid == server.pid, "stats: \(stats ?? "no answer")")
            try await client.null()
            await client.close()
        }
        #expect(!FileManager.default.fileExists(atPath: socket), "the control socket outlived the server")
        #expect(try ControlClient.send("stats", to: socket, timeoutSeconds: 5) == nil, "an answer with no server running")
    }
}
