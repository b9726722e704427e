import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NLM
import ONCRPC
import Portmap
import RPCTransport
import XDR

/// What a client host runs for locking, as far as the server calls it: a lock manager
/// (GRANTED, the _RES answers of _MSG calls) and a status monitor (SM_NOTIFY), on loopback,
/// recording every call. `register(portmapPort:)` makes the server find it, as a client host's
/// own rpcbind would.
package final class LockPeerStub: Sendable {
    /// One call the server made.
    package struct Call: Sendable {
        package var program: UInt32
        package var version: UInt32
        package var procedure: UInt32
        package var arguments: ByteBuffer
        package var from: SocketAddress?
    }

    /// Every call, in order.
    package let calls: AsyncStream<Call>
    /// How GRANTED is answered (granted: the client takes the lock).
    package let grantedAnswer: NIOLockedValueBox<NLM.Status>
    let listener: RPCListener

    private init(listener: RPCListener, calls: AsyncStream<Call>, grantedAnswer: NIOLockedValueBox<NLM.Status>) {
        self.listener = listener
        self.calls = calls
        self.grantedAnswer = grantedAnswer
    }

    package var port: Int { listener.port }

    package static func start() async throws -> LockPeerStub {
        let (calls, continuation) = AsyncStream.makeStream(of: Call.self)
        let answer = NIOLockedValueBox(NLM.Status.granted)
        let programs: [any RPCProgram] = [
            Recorder(program: NLM.program, versions: 1...4, record: continuation, answer: answer),
            Recorder(program: NSM.program, versions: 1...1, record: continuation, answer: answer),
        ]
        let core = RPCServerCore(dispatcher: RPCDispatcher(programs: programs), cache: DuplicateRequestCache(),
                                 threadPool: NIOThreadPool.singleton, logger: Logger(label: "lock-peer-stub"))
        let listener = try await RPCListener.bind(host: "127.0.0.1", port: 0, core: core, group: MultiThreadedEventLoopGroup.singleton)
        return LockPeerStub(listener: listener, calls: calls, grantedAnswer: answer)
    }

    /// Registers NLM versions 1, 3 and 4 and NSM version 1 (TCP and UDP) with the portmapper on
    /// 127.0.0.1:`portmapPort`, through portmap v2 SET.
    package func register(portmapPort: Int) async throws {
        let rpc = try await RPCClient.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: portmapPort), transport: .udp,
                                              group: MultiThreadedEventLoopGroup.singleton)
        defer { Task { await rpc.close() } }
        for (program, version) in [(NLM.program, UInt32(1)), (NLM.program, 3), (NLM.program, 4), (NSM.program, NSM.version)] {
            for proto in [Portmap.protocolTCP, Portmap.protocolUDP] {
                var args = ByteBuffer()
                args.writePortmapMapping(PortmapMapping(program: program, version: version, protocolNumber: proto, port: UInt32(port)))
                var reply = try await rpc.call(program: Portmap.program, version: 2, procedure: PortmapProcedure.set, arguments: args)
                guard try reply.readXDRBool() else { throw TestServerError(description: "portmap SET of \(program) v\(version) refused") }
            }
        }
    }

    /// The next call of `procedure` of `program`, skipping others; fails after `timeout`.
    package func next(_ program: UInt32, _ procedure: UInt32, timeout: Duration = .seconds(30)) async throws -> Call {
        try await withThrowingTaskGroup(of: Call?.self) { group in
            group.addTask {
                for await call in self.calls where call.program == program && call.procedure == procedure { return call }
                return nil
            }
            group.addTask {
                try await Task.sleep(for: timeout)
                return nil
            }
            defer { group.cancelAll() }
            guard let call = try await group.next() ?? nil else {
                throw TestServerError(description: "no call of procedure \(procedure) of program \(program) within \(timeout)")
            }
            return call
        }
    }

    package func close() async { await listener.close() }

    /// Records every call; answers GRANTED with `answer` (echoing the cookie) and everything
    /// else with nothing.
    struct Recorder: RPCProgram {
        let program: UInt32
        let versions: ClosedRange<UInt32>
        let record: AsyncStream<Call>.Continuation
        let answer: NIOLockedValueBox<NLM.Status>

        func traits(procedure: UInt32, version: UInt32) -> RPCProcedureTraits? { .inline }

        func handle(_ call: RPCCall, context: RPCCallContext, results: inout ByteBuffer) throws -> RPCProcedureOutcome {
            record.yield(Call(program: program, version: call.version, procedure: call.procedure, arguments: call.arguments,
                              from: context.remoteAddress))
            if program == NLM.program && call.procedure == NLM.Procedure.granted.rawValue {
                var args = call.arguments
                let a = try args.readNLMLockArguments(.test, version: call.version)
                results.writeNLMResult(cookie: a.cookie, answer.withLockedValue { $0 })
            }
            return .success
        }
    }
}
