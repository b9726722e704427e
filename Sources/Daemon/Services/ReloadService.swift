import FileStore
import Glibc
import NIOPosix
import ServiceLifecycle
import UnixSignals

/// SIGHUP (`systemctl reload`) re-reads the exports file, telling systemd around it. The last
/// service of the server, so the first to stop: it tells systemd the server is stopping.
struct ReloadService: Service {
    /// Trapped before the server says it is ready, so a reload right after start is not fatal.
    let hangups: UnixSignalsSequence
    let exports: LiveExports
    let notifier: SystemdNotifier

    func run() async throws {
        for await _ in hangups.cancelOnGracefulShutdown() {
            await Self.reload(exports, notifier: notifier)
        }
        notifier.notify("STOPPING=1")
    }

    /// Reads the exports file again (SIGHUP, `swiftnfsd exports reload`), telling systemd;
    /// returns why it was not taken. A new export may need a rebuild or a replay: that runs
    /// on a thread of its own.
    @discardableResult
    static func reload(_ exports: LiveExports, notifier: SystemdNotifier) async -> String? {
        notifier.notify("RELOADING=1\nMONOTONIC_USEC=\(monotonicMicroseconds())")
        defer { notifier.notify("READY=1") }
        do {
            return try await NIOThreadPool.singleton.runIfActive { exports.reload() }
        } catch {
            return "\(error)"
        }
    }

    /// CLOCK_MONOTONIC in microseconds, as systemd's MONOTONIC_USEC wants it.
    static func monotonicMicroseconds() -> UInt64 {
        let now = SystemClock().now.components
        return UInt64(now.seconds) * 1_000_000 + UInt64(now.attoseconds / 1_000_000_000_000)
    }
}
