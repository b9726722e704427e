import AsyncHTTPClient
import FoundationEssentials
import Glibc
import NIOCore
import NIOHTTP1
import Synchronization

/// etcd's v3 API through its HTTP/JSON gateway (`POST /v3/...` on the client URLs), with every
/// endpoint of the cluster: a call goes to the endpoint that answered last, and on to the next
/// when one is refused, unreachable, too slow or unavailable, until the call's time is up.
package final class EtcdClient: Sendable {
    /// The client URLs, e.g. `http://10.0.0.5:2379`, without a trailing slash.
    package let endpoints: [String]
    /// How long a call may take, all endpoints together, unless it says otherwise.
    package let timeout: Duration
    private let http: HTTPClient
    private let preferred = Mutex<Int>(0)
    /// The most of an answer that is read (the keys this package keeps are small).
    static let maxResponseBytes = 4 << 20

    package init(endpoints: [String], timeout: Duration = .seconds(5), http: HTTPClient = EtcdClient.sharedHTTPClient) throws {
        guard !endpoints.isEmpty else { throw EtcdError(.unreachable, "no etcd endpoint given") }
        for e in endpoints where !(e.hasPrefix("http://") || e.hasPrefix("https://")) {
            throw EtcdError(.unreachable, "not an http:// or https:// URL: \(e)")
        }
        self.endpoints = endpoints.map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 }
        self.timeout = timeout
        self.http = http
    }

    /// `URL[,URL...]` as the command line gives it.
    package convenience init(commaSeparated text: String, timeout: Duration = .seconds(5)) throws {
        try self.init(endpoints: text.split(separator: ",").map { String($0.filter { !$0.isWhitespace }) }
                        .filter { !$0.isEmpty }, timeout: timeout)
    }

    /// One HTTP client for the process (never shut down, like `HTTPClient.shared`), which does
    /// not retry a refused connection: the next endpoint is tried instead, at once.
    package static let sharedHTTPClient: HTTPClient = {
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.timeout.connect = .seconds(2)
        return HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
    }()

    /// POSTs `request` as JSON to `path` and decodes the answer, trying each endpoint in turn.
    /// An error etcd answered (other than "unavailable") is thrown at once: another member
    /// would say the same.
    package func call<Request: Encodable, Response: Decodable>(
        _ path: String, _ request: Request, as: Response.Type, timeout: Duration? = nil
    ) async throws -> Response {
        let body = try JSONEncoder().encode(request)
        let deadline = ContinuousClock.now + (timeout ?? self.timeout)
        let first = preferred.withLock { $0 }
        var failures: [String] = []
        for attempt in 0..<endpoints.count {
            let index = (first + attempt) % endpoints.count
            let remaining = ContinuousClock.now.duration(to: deadline)
            guard remaining > .zero else { break }
            // An endpoint that swallows packets must leave time for the others.
            let share = remaining / (endpoints.count - attempt)
            let url = endpoints[index] + path
            let answer: (status: HTTPResponseStatus, body: ByteBuffer)
            do {
                answer = try await post(url, body, timeout: share)
            } catch {
                try Task.checkCancellation()
                failures.append("\(url): \(Self.describe(error))")
                continue
            }
            if answer.status == .ok {
                preferred.withLock { $0 = index }
                do {
                    return try JSONDecoder().decode(Response.self, from: Data(answer.body.readableBytesView))
                } catch {
                    throw EtcdError(.malformedResponse, "\(url): \(error)")
                }
            }
            let refusal = try? JSONDecoder().decode(GatewayError.self, from: Data(answer.body.readableBytesView))
            let message = refusal?.message ?? refusal?.error ?? String(buffer: answer.body)
            // gRPC UNAVAILABLE (14): this member cannot serve now (no quorum, stopping); another may.
            if answer.status == .serviceUnavailable || refusal?.code == 14 {
                failures.append("\(url): \(answer.status.code) \(message)")
                continue
            }
            if refusal?.code == 5, message.contains("lease not found") {
                throw EtcdError(.leaseNotFound, message)
            }
            throw EtcdError(.server, "\(url): \(answer.status.code) \(message)")
        }
        if failures.isEmpty { failures.append("no time left (\(timeout ?? self.timeout))") }
        throw EtcdError(.unreachable, failures.joined(separator: "; "))
    }

    private func post(_ url: String, _ body: Data, timeout: Duration) async throws -> (HTTPResponseStatus, ByteBuffer) {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(bytes: body))
        let nanoseconds = timeout.components.seconds * 1_000_000_000 + timeout.components.attoseconds / 1_000_000_000
        let response = try await http.execute(request, timeout: .nanoseconds(max(1, nanoseconds)))
        let bytes = try await response.body.collect(upTo: Self.maxResponseBytes)
        return (response.status, bytes)
    }

    /// A failed connection in a few words ("connection refused", "timed out").
    private static func describe(_ error: any Error) -> String {
        if let e = error as? HTTPClientError, e == .deadlineExceeded || e == .connectTimeout { return "timed out" }
        if let e = error as? IOError { return String(cString: strerror(e.errnoCode)).lowercased() }
        return String(describing: error)
    }
}
