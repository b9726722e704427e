/// The lease calls: `/v3/lease/grant`, `keepalive` and `revoke`.
extension EtcdClient {
    package struct Lease: Hashable, Sendable {
        package var id: Int64
        /// What etcd granted, which may be more than was asked (never less than its minimum TTL).
        package var ttl: Duration
    }

    package func grantLease(ttl: Duration, timeout: Duration? = nil) async throws -> Lease {
        let seconds = max(1, ttl.components.seconds + (ttl.components.attoseconds > 0 ? 1 : 0))
        let answer = try await call("/v3/lease/grant", LeaseGrantRequest(ttl: EtcdInt64(seconds)),
                                    as: LeaseGrantResponse.self, timeout: timeout)
        if let error = answer.error, !error.isEmpty { throw EtcdError(.server, error) }
        guard let id = answer.id?.value, let granted = answer.ttl?.value, granted > 0 else {
            throw EtcdError(.malformedResponse, "lease grant answered without an ID or a TTL")
        }
        return Lease(id: id, ttl: .seconds(granted))
    }

    /// Renews the lease for its whole TTL again; returns that TTL. Throws `leaseNotFound` when
    /// the lease has expired or was revoked.
    @discardableResult
    package func keepAlive(lease: Int64, timeout: Duration? = nil) async throws -> Duration {
        let answer = try await call("/v3/lease/keepalive", LeaseIDRequest(id: EtcdInt64(lease)),
                                    as: LeaseKeepAliveResponse.self, timeout: timeout)
        guard let result = answer.result else { throw EtcdError(.malformedResponse, "keepalive answered without a result") }
        guard let ttl = result.ttl?.value, ttl > 0 else { throw EtcdError(.leaseNotFound, "lease \(lease) has expired") }
        return .seconds(ttl)
    }

    /// Ends the lease and deletes every key attached to it. A lease already gone is no error.
    package func revoke(lease: Int64, timeout: Duration? = nil) async throws {
        do {
            _ = try await call("/v3/lease/revoke", LeaseIDRequest(id: EtcdInt64(lease)), as: LeaseRevokeResponse.self, timeout: timeout)
        } catch let error as EtcdError where error.code == .leaseNotFound {
            return
        }
    }
}
