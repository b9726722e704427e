import ArgumentParser
import FileStore
import Foundation
import HA
import NFS3Client
import NIOCore
import NIOPosix
import ONCRPC

/// `swiftnfsd ha probe`: is the service address answering? NULL, MNT and GETATTR of the
/// export's root over a new TCP connection, as a client that retries at once would see it.
struct HAProbe: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "probe",
        abstract: "Check that an NFS server answers at an address: NULL, MNT and GETATTR of the export's root, one JSON line per attempt.",
        discussion: """
            Lines: {"ok": BOOL, "monotonic_ns": T, "error": "..."}, monotonic_ns being CLOCK_MONOTONIC when the attempt ended. \
            With --until-ok, attempts repeat (each on a new connection) until one succeeds: exit status 0 then, 1 if none did in time.
            """)

    @Option(help: ArgumentHelp("The address to probe (the cluster's service address).", valueName: "IP"))
    var server: String

    @Option(help: "The NFS port.")
    var port = 2049

    @Option(help: ArgumentHelp("The exported path to mount.", valueName: "PATH"))
    var export: String

    @Option(help: ArgumentHelp("Repeat until an attempt succeeds, for at most this many seconds.", valueName: "SECONDS"))
    var untilOk: Double?

    @Option(help: "Milliseconds between attempts.")
    var intervalMs = 100

    @Option(help: "Milliseconds each call (and the connection) may take.")
    var timeoutMs = 1000

    func run() async throws {
        let address = try SocketAddress(ipAddress: server, port: port)
        let deadline = ContinuousClock.now + .milliseconds(Int((untilOk ?? 0) * 1000))
        while true {
            let error = await attempt(address)
            let line = ProbeLine(ok: error == nil, monotonicNs: RoleEvent.nanoseconds(SystemClock().now), error: error)
            FileHandle.standardOutput.write(line.jsonData() + Data("\n".utf8))
            if error == nil { return }
            guard untilOk != nil, ContinuousClock.now < deadline else { throw ExitCode.failure }
            try await Task.sleep(for: .milliseconds(intervalMs))
        }
    }

    /// One attempt; nil when it succeeded, else what failed.
    func attempt(_ address: SocketAddress) async -> String? {
        let timeout = TimeAmount.milliseconds(Int64(timeoutMs))
        let client: NFS3Client
        do {
            client = try await NFS3Client.connect(
                to: address, credentials: .sys(AuthSysParameters(machineName: "probe", uid: 0, gid: 0)), timeout: timeout,
                connectTimeout: timeout, group: MultiThreadedEventLoopGroup.singleton)
        } catch {
            return "connect: \(error)"
        }
        var failure: String?
        do {
            try await client.null()
            let root = try await client.mount(export)
            _ = try await client.getattr(root)
        } catch {
            failure = "\(error)"
        }
        await client.close()
        return failure
    }
}

struct ProbeLine: Codable {
    var ok: Bool
    var monotonicNs: Int64
    var error: String?

    enum CodingKeys: String, CodingKey {
        case ok, error
        case monotonicNs = "monotonic_ns"
    }
}
