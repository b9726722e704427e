import Logging
import NIOConcurrencyHelpers
import NIOCore
import ONCRPC
import Portmap
import RPCTransport
import XDR

/// A call the server makes to a client's lock manager or status monitor: GRANTED for a
/// blocked lock, the _RES answer of a _MSG call, SM_NOTIFY after a restart.
package struct PeerCall: Sendable {
    /// The client (its port is not used: the program's port is asked of its portmapper).
    package var peer: SocketAddress
    /// The server's address the client knows; the call comes from it, since a client's lock
    /// manager matches a GRANTED against the server it sent the lock to.
    package var source: SocketAddress?
    package var transport: RPCTransportProtocol
    package var program: UInt32
    package var version: UInt32
    package var procedure: UInt32
    package var arguments: ByteBuffer
    /// From a reserved port (below 1024): the kernel's lock manager takes its status monitor's
    /// callbacks only from one on the loopback address.
    package var reservedPort = false
    /// For the log.
    package var what: String
    /// The results, or nil when the client could not be reached or refused the call.
    package var done: @Sendable (ByteBuffer?) -> Void

    package init(peer: SocketAddress, source: SocketAddress?, transport: RPCTransportProtocol, program: UInt32,
                 version: UInt32, procedure: UInt32, arguments: ByteBuffer, what: String,
                 done: @escaping @Sendable (ByteBuffer?) -> Void = { _ in }) {
        self.peer = peer
        self.source = source
        self.transport = transport
        self.program = program
        self.version = version
        self.procedure = procedure
        self.arguments = arguments
        self.what = what
        self.done = done
    }
}

/// Sends `PeerCall`s: a bounded queue (a client that never answers costs a few tries, never
/// memory without bound), a few calls at a time, each tried again after 2 and 8 seconds. The
/// program's port is asked of the client's portmapper (port 111); for a client on this host,
/// of the registrations local programs made with this server's own portmapper (`localPort`).
package final class PeerCaller: Sendable {
    let group: EventLoopGroup
    let localPort: @Sendable (_ program: UInt32, _ version: UInt32, _ transport: RPCTransportProtocol, _ ipv6: Bool) -> Int?
    let portmapPort: Int
    let logger: Logger
    let retryDelays: [Duration]
    private let calls: AsyncStream<PeerCall>
    private let continuation: AsyncStream<PeerCall>.Continuation
    private let refusals = RefusalLog()
    private let failedCalls = NIOLockedValueBox(0)
    /// Calls in flight at once.
    static let concurrency = 16
    /// Calls waiting; more are dropped (and logged).
    static let queueLimit = 4096

    package init(group: EventLoopGroup, portmapPort: Int = 111, retryDelays: [Duration] = [.seconds(2), .seconds(8)],
                 logger: Logger,
                 localPort: @escaping @Sendable (UInt32, UInt32, RPCTransportProtocol, Bool) -> Int?) {
        self.group = group
        self.portmapPort = portmapPort
        self.retryDelays = retryDelays
        self.logger = logger
        self.localPort = localPort
        (calls, continuation) = AsyncStream.makeStream(of: PeerCall.self, bufferingPolicy: .bufferingOldest(Self.queueLimit))
    }

    /// Calls that no try delivered (or dropped from a full queue) since the start.
    package var failures: Int { failedCalls.withLockedValue { $0 } }

    package func send(_ call: PeerCall) {
        if case .dropped = continuation.yield(call) {
            failedCalls.withLockedValue { $0 += 1 }
            logger.warning("callback queue full: call dropped", metadata: ["nlm.peer": "\(call.peer.ipAddress ?? "-")", "nlm.call": "\(call.what)"])
            call.done(nil)
        }
    }

    /// No more calls: `run` returns once the queued ones are done.
    package func finish() { continuation.finish() }

    /// Sends the queued calls until `finish`.
    package func run() async {
        await withTaskGroup(of: Void.self) { tasks in
            var running = 0
            for await call in calls {
                if running >= Self.concurrency {
                    await tasks.next()
                    running -= 1
                }
                tasks.addTask { await self.deliver(call) }
                running += 1
            }
        }
    }

    func deliver(_ call: PeerCall) async {
        var lastError: Error?
        for attempt in 0...retryDelays.count {
            if attempt > 0 {
                guard (try? await Task.sleep(for: retryDelays[attempt - 1])) != nil else { break }
            }
            do {
                call.done(try await callOnce(call))
                return
            } catch PeerCallError.noPort {
                // No such program on this host (the server is its own status monitor when it
                // mounts its own export): nothing to call.
                logger.debug("no local program to call", metadata: ["nlm.call": "\(call.what)"])
                call.done(nil)
                return
            } catch let error as RPCClientError where error.reason != .timedOut && error.reason != .connectionClosed {
                lastError = error  // refused by the client: trying again does not help
                break
            } catch {
                lastError = error
            }
        }
        failedCalls.withLockedValue { $0 += 1 }
        let peer = call.peer.ipAddress ?? "-"
        if refusals.shouldLog("\(peer) \(call.program)") {
            logger.warning("client did not answer a callback", metadata: [
                "nlm.peer": "\(peer)", "nlm.call": "\(call.what)", "nlm.error": "\(lastError.map { "\($0)" } ?? "-")",
            ])
        }
        call.done(nil)
    }

    func callOnce(_ call: PeerCall) async throws -> ByteBuffer {
        guard let host = call.peer.ipAddress else { throw PeerCallError.noPort }
        let source = try call.source?.ipAddress.map { try SocketAddress(ipAddress: $0, port: 0) }
        let port = try await self.port(of: call, host: host, source: source)
        let client = try await connect(to: try SocketAddress(ipAddress: host, port: port), call: call, source: source)
        defer { Task { await client.close() } }
        return try await client.call(program: call.program, version: call.version, procedure: call.procedure,
                                     arguments: call.arguments, timeout: .seconds(5))
    }

    /// A client of the call's transport, bound to a reserved port when the call needs one (as
    /// bindresvport(3) does: the first free one from a random start, going down).
    func connect(to address: SocketAddress, call: PeerCall, source: SocketAddress?) async throws -> RPCClient {
        guard call.reservedPort else {
            return try await RPCClient.connect(to: address, transport: call.transport, localAddress: source, group: group)
        }
        let host = source?.ipAddress ?? (address.protocol == .inet6 ? "::" : "0.0.0.0")
        let start = Int.random(in: 600...1023)
        var lastError: Error = PeerCallError.noPort
        for offset in 0..<64 {
            let port = 600 + (start - 600 + 424 - offset) % 424
            do {
                return try await RPCClient.connect(to: address, transport: call.transport,
                                                   localAddress: try SocketAddress(ipAddress: host, port: port), group: group)
            } catch {
                lastError = error
            }
        }
        throw lastError
    }

    /// The client's port for the call's program, version and transport.
    func port(of call: PeerCall, host: String, source: SocketAddress?) async throws -> Int {
        // On this host: a loopback address, or the server's own address (the server host
        // mounting its own export by its network address).
        if call.peer.isLoopback || (call.source?.ipAddress).map({ $0 == host }) == true {
            guard let port = localPort(call.program, call.version, call.transport, host.contains(":") && !host.hasPrefix("::ffff:")) else {
                throw PeerCallError.noPort
            }
            return port
        }
        return try await PortmapLookup.port(program: call.program, version: call.version, transport: call.transport,
                                            portmapper: try SocketAddress(ipAddress: host, port: portmapPort), via: .udp,
                                            localAddress: source, timeout: .seconds(3), group: group)
    }
}

enum PeerCallError: Error, CustomStringConvertible {
    case noPort
    var description: String { "no program of this host is registered for the call" }
}
