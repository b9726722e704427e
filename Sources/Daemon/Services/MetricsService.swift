import NIOCore
import ServiceLifecycle

/// Serves `/metrics` (`MetricsEndpoint`) on its bound channel until the stop.
struct MetricsService: Service {
    let channel: Channel

    func run() async throws {
        try? await gracefulShutdown()
        try? await channel.close()
    }
}
