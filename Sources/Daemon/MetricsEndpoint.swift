import CoreMetrics
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Prometheus

/// `serve --metrics-listen ADDR:PORT`: the server's metrics in the Prometheus text format at
/// `GET /metrics`. Code everywhere emits through swift-metrics (`Counter`, `Timer`, `Gauge`);
/// this backend keeps them in a swift-prometheus registry, each with its HELP text, so
/// `promtool check metrics` finds nothing to say. Values that are states rather than events
/// (journal size, connections open) are read at each scrape (`collect`).
enum MetricsEndpoint {
    /// What each metric means (the HELP line), by name.
    static let help: [String: String] = [
        "nfs_requests_total": "NFSv3 calls answered, by procedure.",
        "nfs_request_duration_seconds": "Time from a decoded NFSv3 call to its encoded reply, by procedure.",
        "nfs_errors_total": "NFSv3 calls answered with an nfsstat3 other than NFS3_OK, by procedure and status.",
        "nfs_read_bytes_total": "Bytes of file data returned by READ.",
        "nfs_written_bytes_total": "Bytes of file data taken by WRITE.",
        "rpc_connections": "TCP connections open, by listener.",
        "rpc_calls_total": "RPC calls the NFS port received, by event loop and by where they ran (the event loop itself, or a pool thread).",
        "rpc_duplicate_request_cache_hits_total": "Retransmitted calls answered from the duplicate request cache.",
        "journal_uncheckpointed_bytes": "Bytes in the journal that the durable copy does not have yet.",
        "journal_limit_bytes": "The journal's limit: beyond it changes are held back until a checkpoint.",
        "journal_unsynced_bytes": "Bytes appended to the journal and not yet covered by an fsync.",
        "journal_segments": "Segment files of the journal on the durable disk.",
        "journal_held_back_changes": "Changes waiting for room in the journal right now (back-pressure).",
        "journal_degraded": "1 while the journal cannot be made durable or checkpoints fail, else 0.",
        "journal_checkpoint_age_seconds": "Seconds since the last checkpoint that brought the durable copy up to date.",
        "journal_checkpoint_duration_seconds": "Time a checkpoint took.",
        "journal_durable_errors_total": "Writes and fsyncs of the journal on the durable disk that failed.",
        "journal_write_back_bytes": "UNSTABLE data waiting in the served files to be copied into the journal.",
    ]

    /// Latency buckets from 50 us (a GETATTR from the caches) to 10 s (a change held back).
    static let durationBuckets: [Duration] = [
        .microseconds(50), .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1),
        .milliseconds(2.5), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
        .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(10),
    ]

    /// Makes swift-metrics report into `registry` (once per process).
    static func bootstrap(_ registry: PrometheusCollectorRegistry) {
        MetricsSystem.bootstrap(Backend(registry: registry))
    }

    /// Listens on `host:port`; the channel closes with `close()`.
    static func bind(host: String, port: Int, registry: PrometheusCollectorRegistry, group: EventLoopGroup,
                     collect: @escaping @Sendable () -> Void) async throws -> Channel {
        try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(Handler {
                        collect()
                        return registry.emitToBuffer()
                    })
                }
            }
            .bind(host: host, port: port).get()
    }

    /// Answers `GET /metrics`; anything else is 404 (405 for another method). One request per
    /// connection.
    final class Handler: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        let render: @Sendable () -> [UInt8]
        private var head: HTTPRequestHead?

        init(render: @escaping @Sendable () -> [UInt8]) {
            self.render = render
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let h): head = h
            case .body: break
            case .end:
                guard let head else { return }
                let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
                let (status, body, type): (HTTPResponseStatus, [UInt8], String) =
                    path != "/metrics" ? (.notFound, Array("not found; the metrics are at /metrics\n".utf8), "text/plain")
                    : head.method != .GET ? (.methodNotAllowed, Array("GET only\n".utf8), "text/plain")
                    : (.ok, render(), "text/plain; version=0.0.4; charset=utf-8")
                let headers = HTTPHeaders([("Content-Type", type), ("Content-Length", "\(body.count)"), ("Connection", "close")])
                context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))), promise: nil)
                context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: body)))), promise: nil)
                let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
                context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in loopBound.value.close(promise: nil) }
            }
        }
    }

    /// swift-metrics' factory over the registry, giving each metric its HELP text and every
    /// timer the latency buckets.
    struct Backend: MetricsFactory {
        let registry: PrometheusCollectorRegistry

        func descriptor(_ label: String) -> MetricNameDescriptor {
            MetricNameDescriptor(metricName: label, unitName: "", helpText: MetricsEndpoint.help[label] ?? label)
        }

        func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
            registry.makeCounter(descriptor: descriptor(label), labels: dimensions)
        }

        func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> any FloatingPointCounterHandler {
            registry.makeCounter(descriptor: descriptor(label), labels: dimensions)
        }

        func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
            registry.makeGauge(descriptor: descriptor(label), labels: dimensions)
        }

        func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler {
            registry.makeGauge(descriptor: descriptor(label), labels: dimensions)
        }

        func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
            registry.makeDurationHistogram(descriptor: descriptor(label), labels: dimensions, buckets: MetricsEndpoint.durationBuckets)
        }

        func destroyCounter(_ handler: any CounterHandler) {
            if let c = handler as? Prometheus.Counter { registry.unregisterCounter(c) }
        }

        func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) {
            if let c = handler as? Prometheus.Counter { registry.unregisterCounter(c) }
        }

        func destroyRecorder(_ handler: any RecorderHandler) {
            if let g = handler as? Prometheus.Gauge { registry.unregisterGauge(g) }
        }

        func destroyMeter(_ handler: any MeterHandler) {
            if let g = handler as? Prometheus.Gauge { registry.unregisterGauge(g) }
        }

        func destroyTimer(_ handler: any TimerHandler) {
            if let h = handler as? DurationHistogram { registry.unregisterDurationHistogram(h) }
        }
    }
}
