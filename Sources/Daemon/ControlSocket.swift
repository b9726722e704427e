import Glibc
import Logging
import NIOCore
import NIOPosix

/// The operator's line to the running server: a Unix domain socket, `STATE-DIR/control`, that
/// only root can open (mode 0600, in the state directory the server makes 0700). A client
/// sends one command line and reads the answer until the server closes the connection:
///
///     stats                   the handle cache's counters now (`ServerStatistics` text)
///     checkpoint              a checkpoint of every journal now; one line per journal
///     journal-status DIR      the status of the journal in DIR, written out now (`JournalStatus` text)
///     exports-reload          the exports file read again (as SIGHUP)
///     ha-status               a cluster node's role, epoch, address and hook (`HAStatus` text)
///
/// An answer that starts with "error: " is a refusal. `swiftnfsd stats`, `checkpoint`,
/// `journal status` and `exports reload` are the clients (`ControlClient`).
enum ControlSocket {
    static func path(stateDirectory: String) -> String { stateDirectory + "/control" }

    typealias Listener = NIOAsyncChannel<NIOAsyncChannel<ByteBuffer, ByteBuffer>, Never>

    /// Listens on `path` (before the server says it is ready, so a command right after finds it).
    static func bind(path: String, group: EventLoopGroup) async throws -> Listener {
        let server = try await ServerBootstrap(group: group)
            .bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        chmod(path, 0o600)
        return server
    }

    /// Serves `answer` on `server` until the task is cancelled; the socket file is removed then.
    static func serve(_ server: Listener, path: String, logger: Logger,
                      answer: @escaping @Sendable (String) async -> String) async {
        defer { unlink(path) }
        await withTaskCancellationHandler {
            await withDiscardingTaskGroup { connections in
                try? await server.executeThenClose { inbound in
                    for try await connection in inbound {
                        connections.addTask { await serveOne(connection, logger: logger, answer: answer) }
                    }
                }
            }
        } onCancel: {
            server.channel.close(promise: nil)
        }
    }

    /// The longest command line taken.
    static let maxCommand = 4096

    private static func serveOne(_ connection: NIOAsyncChannel<ByteBuffer, ByteBuffer>, logger: Logger,
                                 answer: @Sendable (String) async -> String) async {
        try? await connection.executeThenClose { inbound, outbound in
            var line = ByteBuffer()
            for try await var chunk in inbound {
                line.writeBuffer(&chunk)
                if line.readableBytesView.contains(UInt8(ascii: "\n")) || line.readableBytes > maxCommand { break }
            }
            let text = String(decoding: line.readableBytesView.prefix { $0 != UInt8(ascii: "\n") }, as: UTF8.self)
            let reply: String
            if line.readableBytes > maxCommand {
                reply = "error: command longer than \(maxCommand) bytes\n"
            } else {
                logger.info("control command", metadata: ["control.command": "\(text)"])
                reply = await answer(text)
            }
            try await outbound.write(ByteBuffer(string: reply))
        }
    }
}

/// The command-line side of `ControlSocket`: one command, its answer.
package enum ControlClient {
    package static func socketPath(stateDirectory: String) -> String { ControlSocket.path(stateDirectory: stateDirectory) }

    /// Sends `command` to the server listening on `path` and returns its answer; nil when no
    /// server listens there (no socket, or nothing accepting on it).
    package static func send(_ command: String, to path: String, timeoutSeconds: Int) throws -> String? {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw ControlError("socket: errno \(errno)") }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { throw ControlError("socket path too long: \(path)") }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard connected == 0 else {
            if errno == ENOENT || errno == ECONNREFUSED { return nil }
            throw ControlError("connect \(path): errno \(errno)")
        }
        var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let line = Array((command + "\n").utf8)
        guard line.withUnsafeBytes({ Glibc.write(fd, $0.baseAddress, $0.count) }) == line.count else {
            throw ControlError("write \(path): errno \(errno)")
        }
        var answer: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n == 0 { break }
            guard n > 0 else {
                if errno == EINTR { continue }
                throw ControlError(errno == EAGAIN ? "no answer from the server within \(timeoutSeconds) s" : "read \(path): errno \(errno)")
            }
            answer += buffer[0..<n]
        }
        return String(decoding: answer, as: UTF8.self)
    }
}

package struct ControlError: Error, CustomStringConvertible {
    package var description: String
    init(_ description: String) { self.description = description }
}
