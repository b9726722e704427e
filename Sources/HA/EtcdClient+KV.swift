import FoundationEssentials

/// The key-value calls: `/v3/kv/range`, `put`, `deleterange` and `txn`.
extension EtcdClient {
    /// The key, if it exists.
    package func get(_ key: String, timeout: Duration? = nil) async throws -> EtcdKeyValue? {
        let answer = try await call("/v3/kv/range", RangeRequest(key: Data(key.utf8)), as: RangeResponse.self, timeout: timeout)
        return answer.kvs?.first
    }

    /// Every key that starts with `prefix`, in key order.
    package func list(prefix: String, timeout: Duration? = nil) async throws -> [EtcdKeyValue] {
        let request = RangeRequest(key: Data(prefix.utf8), rangeEnd: Self.rangeEnd(ofPrefix: prefix))
        return try await call("/v3/kv/range", request, as: RangeResponse.self, timeout: timeout).kvs ?? []
    }

    /// Sets the key (attached to `lease` if given); returns the store's revision after it.
    @discardableResult
    package func put(_ key: String, _ value: Data, lease: Int64? = nil, timeout: Duration? = nil) async throws -> Int64 {
        let answer = try await call("/v3/kv/put", PutRequest(key: Data(key.utf8), value: value, lease: lease),
                                    as: PutResponse.self, timeout: timeout)
        return answer.header?.revision?.value ?? 0
    }

    /// Deletes the key; returns how many keys went (0 or 1).
    @discardableResult
    package func delete(_ key: String, timeout: Duration? = nil) async throws -> Int64 {
        let answer = try await call("/v3/kv/deleterange", DeleteRangeRequest(key: Data(key.utf8)),
                                    as: DeleteRangeResponse.self, timeout: timeout)
        return answer.deleted?.value ?? 0
    }

    /// The value of `key`, which is set to `proposed` first if the key does not exist (one
    /// transaction: of several nodes proposing at once, one value wins and all get it).
    package func value(of key: String, settingIfAbsent proposed: Data, timeout: Duration? = nil) async throws -> Data {
        let k = Data(key.utf8)
        let answer = try await txn(TxnRequest(compare: [.created(k, at: 0)], success: [.put(PutRequest(key: k, value: proposed))],
                                              failure: [.range(RangeRequest(key: k))]), timeout: timeout)
        if answer.succeeded == true { return proposed }
        guard let value = answer.responses?.compactMap({ $0.responseRange?.kvs?.first?.value }).first else {
            throw EtcdError(.malformedValue, "\(key): neither created nor read")
        }
        return value
    }

    package func txn(_ request: TxnRequest, timeout: Duration? = nil) async throws -> TxnResponse {
        try await call("/v3/kv/txn", request, as: TxnResponse.self, timeout: timeout)
    }

    /// The end of the range of keys that start with `prefix`: the prefix with its last byte
    /// incremented (etcd's `clientv3.GetPrefixRangeEnd`).
    static func rangeEnd(ofPrefix prefix: String) -> Data {
        var bytes = Array(prefix.utf8)
        while let last = bytes.last {
            if last < 0xff {
                bytes[bytes.count - 1] = last + 1
                return Data(bytes)
            }
            bytes.removeLast()
        }
        return Data([0])  // every key
    }
}
