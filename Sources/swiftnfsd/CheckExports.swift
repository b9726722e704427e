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
