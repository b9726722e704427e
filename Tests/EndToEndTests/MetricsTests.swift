import NFS3Client
import Foundation
import NFS3
import NIOCore
import NLM
import SwiftNFSTesting
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// `serve --metrics-listen`: what a Prometheus server scrapes, after calls a client made.
@Suite("Prometheus metrics", .serialized)
struct MetricsTests {
    @Test("/metrics counts calls, failures by status, bytes and connections; journal gauges; HELP for every metric; promtool clean")
    func scrape() async throws {
        let port = try Ports.freeTCPAndUDP()
        var durable = ""
        try await ServerProcess.with(portmap: .none, configure: { server in
            durable = server.root.appendingPathComponent("durable").path
            server.extraArguments = ["--durable-dir", durable, "--max-journal-mib", "64", "--metrics-listen", "127.0.0.1:\(port)"]
        }) { server in
            let client = try await server.nfsClient(machine: "metrics")
            let root = try await client.mount(server.exportPath)
            for _ in 0..<3 { _ = try await client.getattr(root) }
            _ = try? await client.lookup(root, Array("missing".utf8))
            let file = try #require(try await client.create(root, Array("f".utf8)).object)
            _ = try await client.write(file, offset: 0, data: ByteBuffer(repeating: 7, count: 1000), stable: .fileSync)
            _ = try await client.read(file, offset: 0, count: 1000)
            let nlm = try await NLMClient.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: server.nfsPort))
            let lock = NLMLock(callerName: "metrics", fileHandle: file.bytes, ownerHandle: [1], svid: 1, offset: 0, length: 10)
            #expect(try await nlm.lock(lock, exclusive: true) == .granted)
            await nlm.close()
            // Four connections: the server spreads them over its event loops (one a core).
            var more: [NFS3Client] = []
            for i in 0..<4 { more.append(try await server.nfsClient(machine: "metrics-\(i)")) }
            for c in more { for _ in 0..<5 { _ = try await c.getattr(root) } }
            for c in more { await c.close() }

            let (text, type) = try await get("http://127.0.0.1:\(port)/metrics")
            #expect(type?.hasPrefix("text/plain; version=0.0.4") == true, "Content-Type \(type ?? "none")")
            let samples = Self.samples(text)
            #expect((samples[#"nfs_requests_total{procedure="GETATTR"}"#] ?? 0) >= 3, "GETATTR count in:\n\(text)")
            #expect(samples[#"nfs_errors_total{procedure="LOOKUP",status="NFS3ERR_NOENT"}"#] == 1, "LOOKUP NOENT in:\n\(text)")
            #expect(samples["nfs_written_bytes_total"] == 1000 && samples["nfs_read_bytes_total"] == 1000, "bytes in:\n\(text)")
            #expect((samples[#"nfs_request_duration_seconds_count{procedure="WRITE"}"#] ?? 0) >= 1)
            #expect(samples.keys.contains { $0.hasPrefix(#"nfs_request_duration_seconds_bucket{procedure="GETATTR",le="0.0001""#) })
            #expect((samples[#"rpc_connections{listener="nfs"}"#] ?? 0) >= 1, "connections in:\n\(text)")
            // Calls by event loop: more than one loop served calls, and GETATTR of a cached file
            // was answered on a loop, the CREATE on a pool thread.
            let byLoop = samples.filter { $0.key.hasPrefix("rpc_calls_total{") && $0.value > 0 }
            let loops = Set(byLoop.keys.compactMap { Self.label("event_loop", in: $0) })
            #expect(loops.count >= 2, "calls by event loop in:\n\(text)")
            #expect(byLoop.keys.contains { $0.contains(#"ran="event_loop""#) } && byLoop.keys.contains { $0.contains(#"ran="pool""#) },
                    "calls by where they ran in:\n\(text)")
            #expect(samples[#"journal_limit_bytes{directory="\#(durable)"}"#] == Double(64 << 20), "journal limit in:\n\(text)")
            #expect(samples[#"journal_degraded{directory="\#(durable)"}"#] == 0)
            #expect(samples[#"journal_checkpoint_age_seconds{directory="\#(durable)"}"#] != nil)
            #expect(samples["nlm_locks"] == 1 && samples["nlm_blocked_requests"] == 0 && samples["nlm_grace_period"] == 0,
                    "lock gauges in:\n\(text)")
            // The CREATE and the FILE_SYNC WRITE were each answered after an fsync of the journal.
            #expect((samples[#"journal_fsyncs_total{directory="\#(durable)"}"#] ?? 0) >= 1, "fsyncs in:\n\(text)")
            // Every family has its HELP and TYPE.
            let families = Set(text.split(separator: "\n").filter { $0.hasPrefix("# TYPE ") }.map { $0.split(separator: " ")[2] })
            let helped = Set(text.split(separator: "\n").filter { $0.hasPrefix("# HELP ") }.map { $0.split(separator: " ")[2] })
            #expect(!families.isEmpty && families == helped, "families without HELP: \(families.subtracting(helped))")
            if let promtool = try? Tools.path(of: "promtool") {
                let file = server.root.appendingPathComponent("metrics.txt").path
                try text.write(toFile: file, atomically: true, encoding: .utf8)
                let check = try await Tools.run("sh", ["-c", "\(promtool) check metrics < \(file)"])
                #expect(check.succeeded && check.stdout.isEmpty && check.stderr.isEmpty, "promtool check metrics: \(check)")
            } else {
                print("metrics: promtool not installed (Debian package prometheus); the exposition was not linted")
            }
            let (missing, _) = try await get("http://127.0.0.1:\(port)/other", expect: 404)
            #expect(missing.contains("/metrics"))
            await client.close()
        }
    }

    func get(_ url: String, expect status: Int = 200) async throws -> (String, String?) {
        let (data, response) = try await URLSession.shared.data(from: try #require(URL(string: url)))
        let http = try #require(response as? HTTPURLResponse)
        #expect(http.statusCode == status, "GET \(url): \(http.statusCode)")
        return (String(decoding: data, as: UTF8.self), http.value(forHTTPHeaderField: "Content-Type"))
    }

    /// The value of label `name` in a sample's "name{labels}".
    static func label(_ name: String, in sample: String) -> Substring? {
        guard let start = sample.firstRange(of: name + "=\"")?.upperBound else { return nil }
        return sample[start...].prefix { $0 != "\"" }
    }

    /// "name{labels} value" lines by "name{labels}".
    static func samples(_ text: String) -> [String: Double] {
        var out: [String: Double] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
            out[String(line[..<space])] = value
        }
        return out
    }
}
