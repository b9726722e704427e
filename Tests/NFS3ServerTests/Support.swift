import NFS3
import NFS3Client
import Testing

/// Expects `body` to fail with `status` from the server.
func expectStatus<T>(_ status: NFS3Status, _ what: String, _ body: () async throws -> T) async {
    do {
        _ = try await body()
        Issue.record("\(what): succeeded, expected \(status.name)")
    } catch {
        #expect((error as? NFS3ClientError)?.status == status, "\(what): \(error)")
    }
}

func name(_ s: String) -> [UInt8] { Array(s.utf8) }
