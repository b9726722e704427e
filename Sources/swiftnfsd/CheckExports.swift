import ArgumentParser
import Daemon

struct CheckExports: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-exports",
        abstract: "Validate an exports file and print the table it means.")

    @Argument(help: "The exports file (exports(5) syntax).")
    var file: String

    func run() throws {
        let entries: [ExportEntryConfig]
        do {
            entries = try ExportsParser.load(path: file)
        } catch {
            print("\(error)")
            throw ExitCode(1)
        }
        for e in entries {
            for (spec, o) in e.clients {
                var words = [o.readOnly ? "ro" : "rw", o.sync ? "sync" : "async", o.secure ? "secure" : "insecure",
                             o.allSquash ? "all_squash" : (o.rootSquash ? "root_squash" : "no_root_squash"),
                             "anonuid=\(o.anonUID)", "anongid=\(o.anonGID)"]
                if let fsid = o.fsid { words.append("fsid=\(fsid)") }
                if o.crossMount { words.append("crossmnt") }
                print("\(e.path)\t\(spec)(\(words.joined(separator: ",")))")
            }
        }
    }
}

struct ExportsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "exports", abstract: "The running server's exports.", subcommands: [Reload.self])

    struct Reload: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make the running server read its exports file again (as SIGHUP), and print what it exports then.")

        @Option(help: ArgumentHelp("The state directory the server uses (DURABLE-DIR/state with --durable-dir).", valueName: "DIR"))
        var stateDir = "/var/lib/swiftnfs"

        @Option(help: "Seconds to wait for the server's answer.")
        var timeout = 30

        func run() throws {
            let path = ControlClient.socketPath(stateDirectory: stateDir)
            guard let answer = try ControlClient.send("exports-reload", to: path, timeoutSeconds: timeout) else {
                throw ValidationError("no server answers on \(path) (is one running with --state-dir \(stateDir)?)")
            }
            print(answer, terminator: "")
            if answer.hasPrefix("error: ") { throw ExitCode.failure }
        }
    }
}
