import Foundation
import Logging
import ServiceLifecycle

/// Answers the operator's commands on the control socket (`ControlSocket`) until the stop.
struct ControlService: Service {
    let listener: ControlSocket.Listener
    let path: String
    let exports: LiveExports
    let durabilities: [Durability]
    let ha: HAService?
    let notifier: SystemdNotifier
    let logger: Logger

    func run() async throws {
        await cancelWhenGracefulShutdown {
            await ControlSocket.serve(listener, path: path, logger: logger) { line in await answer(line) }
        }
    }

    /// The answer to one command line.
    func answer(_ line: String) async -> String {
        let words = line.split(separator: " ", maxSplits: 1).map(String.init)
        switch words.first ?? "" {
        case "stats":
            return ServerStatistics.publish(exports).text
        case "checkpoint":
            guard !durabilities.isEmpty else { return "error: this server has no durable directory\n" }
            var lines = ""
            for durability in durabilities { lines += await durability.checkpointNow() + "\n" }
            return lines
        case "journal-status":
            let wanted = words.count == 2 ? Self.realPath(words[1]) : nil
            guard let durability = durabilities.first(where: { Self.realPath($0.settings.directory) == wanted }) else {
                return "error: this server keeps no journal in \(words.count == 2 ? words[1] : "(no directory given)")\n"
            }
            return durability.publishStatus().text
        case "exports-reload":
            if let failure = await ReloadService.reload(exports, notifier: notifier) { return "error: exports not reloaded: \(failure)\n" }
            return exports.current.map { "exported: \($0.config.path)\n" }.joined()
        case "ha-status":
            return ha?.status.text ?? "error: this server is not a node of a cluster (no --ha-etcd)\n"
        default:
            return "error: unknown command \"\(words.first ?? "")\" (stats, checkpoint, journal-status DIR, exports-reload, ha-status)\n"
        }
    }

    static func realPath(_ path: String) -> String {
        guard let resolved = realpath(path, nil) else { return path }
        defer { free(resolved) }
        return String(cString: resolved)
    }
}
