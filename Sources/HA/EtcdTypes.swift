import FoundationEssentials

// The messages of etcd's v3 API as its gRPC gateway carries them in JSON (etcd 3.4,
// `api/etcdserverpb/rpc.proto`, mapped by grpc-gateway's jsonpb): field names as in the proto,
// `bytes` as base64 strings (what `Data` encodes to by default), int64 as decimal strings, enum
// values by name, and fields at their default value (0, false, empty) left out of answers.

/// An int64 of the proto: a JSON string on the wire, though a number is accepted too.
package struct EtcdInt64: Codable, Hashable, Sendable, ExpressibleByIntegerLiteral {
    package var value: Int64

    package init(_ value: Int64) { self.value = value }
    package init(integerLiteral value: Int64) { self.value = value }

    package init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let number = try? container.decode(Int64.self) {
            value = number
        } else if let parsed = Int64(try container.decode(String.self)) {
            value = parsed
        } else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "not an int64")
        }
    }

    package func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(String(value))
    }
}

/// `ResponseHeader`: the revision of the store when the request was served.
package struct EtcdHeader: Codable, Sendable {
    package var revision: EtcdInt64?
}

/// `mvccpb.KeyValue`.
package struct EtcdKeyValue: Codable, Sendable, Equatable {
    package var key: Data
    package var value: Data?
    /// The revision of the last creation of this key: the leader key's is the leader's epoch.
    package var createRevision: EtcdInt64?
    package var modRevision: EtcdInt64?
    package var version: EtcdInt64?
    /// The lease the key is attached to (absent: none).
    package var lease: EtcdInt64?

    enum CodingKeys: String, CodingKey {
        case key, value, version, lease
        case createRevision = "create_revision"
        case modRevision = "mod_revision"
    }

    package var keyString: String { String(decoding: key, as: UTF8.self) }
}

/// `RangeRequest` (and `DeleteRangeRequest`): one key, or every key in [key, rangeEnd).
package struct RangeRequest: Codable, Sendable {
    package var key: Data
    package var rangeEnd: Data?

    package init(key: Data, rangeEnd: Data? = nil) {
        self.key = key
        self.rangeEnd = rangeEnd
    }

    enum CodingKeys: String, CodingKey {
        case key
        case rangeEnd = "range_end"
    }
}

package struct RangeResponse: Codable, Sendable {
    package var header: EtcdHeader?
    package var kvs: [EtcdKeyValue]?
}

/// `PutRequest`, under a lease when `lease` is given.
package struct PutRequest: Codable, Sendable {
    package var key: Data
    package var value: Data
    package var lease: EtcdInt64?

    package init(key: Data, value: Data, lease: Int64? = nil) {
        self.key = key
        self.value = value
        self.lease = lease.map { EtcdInt64($0) }
    }
}

package struct PutResponse: Codable, Sendable {
    package var header: EtcdHeader?
}

/// `DeleteRangeRequest`: the same two fields as a range.
package typealias DeleteRangeRequest = RangeRequest

package struct DeleteRangeResponse: Codable, Sendable {
    package var header: EtcdHeader?
    package var deleted: EtcdInt64?
}

/// `Compare`: only the targets this package uses (a key's create and mod revisions, its lease).
/// A key that does not exist compares as revision 0.
package struct Compare: Codable, Sendable {
    package enum Target: String, Codable, Sendable { case create = "CREATE", mod = "MOD", lease = "LEASE" }
    package enum Result: String, Codable, Sendable { case equal = "EQUAL" }

    package var key: Data
    package var target: Target
    package var result: Result
    package var createRevision: EtcdInt64?
    package var modRevision: EtcdInt64?
    package var lease: EtcdInt64?

    /// True when `key` was last changed at `revision` (0: the key does not exist).
    package static func modified(_ key: Data, at revision: Int64) -> Compare {
        Compare(key: key, target: .mod, result: .equal, modRevision: EtcdInt64(revision))
    }

    /// True when `key` was created at `revision` (0: the key does not exist).
    package static func created(_ key: Data, at revision: Int64) -> Compare {
        Compare(key: key, target: .create, result: .equal, createRevision: EtcdInt64(revision))
    }

    /// True when `key` is attached to `lease`.
    package static func leased(_ key: Data, to lease: Int64) -> Compare {
        Compare(key: key, target: .lease, result: .equal, lease: EtcdInt64(lease))
    }

    enum CodingKeys: String, CodingKey {
        case key, target, result, lease
        case createRevision = "create_revision"
        case modRevision = "mod_revision"
    }
}

/// `RequestOp`: one of its three kinds.
package struct RequestOp: Codable, Sendable {
    package var requestRange: RangeRequest?
    package var requestPut: PutRequest?
    package var requestDeleteRange: DeleteRangeRequest?

    package static func range(_ r: RangeRequest) -> RequestOp { RequestOp(requestRange: r) }
    package static func put(_ p: PutRequest) -> RequestOp { RequestOp(requestPut: p) }
    package static func delete(_ d: DeleteRangeRequest) -> RequestOp { RequestOp(requestDeleteRange: d) }

    enum CodingKeys: String, CodingKey {
        case requestRange = "request_range"
        case requestPut = "request_put"
        case requestDeleteRange = "request_delete_range"
    }
}

package struct ResponseOp: Codable, Sendable {
    package var responseRange: RangeResponse?

    enum CodingKeys: String, CodingKey {
        case responseRange = "response_range"
    }
}

/// `TxnRequest`: if every compare holds, `success` runs, else `failure`.
package struct TxnRequest: Codable, Sendable {
    package var compare: [Compare]
    package var success: [RequestOp]
    package var failure: [RequestOp]

    package init(compare: [Compare], success: [RequestOp], failure: [RequestOp] = []) {
        self.compare = compare
        self.success = success
        self.failure = failure
    }
}

package struct TxnResponse: Codable, Sendable {
    package var header: EtcdHeader?
    package var succeeded: Bool?
    package var responses: [ResponseOp]?
}

/// `LeaseGrantRequest` (TTL in seconds; etcd may grant a longer one than asked).
package struct LeaseGrantRequest: Codable, Sendable {
    package var ttl: EtcdInt64

    enum CodingKeys: String, CodingKey { case ttl = "TTL" }
}

package struct LeaseGrantResponse: Codable, Sendable {
    package var header: EtcdHeader?
    package var id: EtcdInt64?
    package var ttl: EtcdInt64?
    package var error: String?

    enum CodingKeys: String, CodingKey {
        case header, error
        case id = "ID"
        case ttl = "TTL"
    }
}

/// `LeaseKeepAliveRequest` and `LeaseRevokeRequest`.
package struct LeaseIDRequest: Codable, Sendable {
    package var id: EtcdInt64

    enum CodingKeys: String, CodingKey { case id = "ID" }
}

/// `LeaseKeepAliveResponse`. The gateway streams them, each wrapped in `{"result": ...}`; a
/// lease that no longer exists comes back with no TTL (0).
package struct LeaseKeepAliveResponse: Codable, Sendable {
    package struct Result: Codable, Sendable {
        package var ttl: EtcdInt64?

        enum CodingKeys: String, CodingKey { case ttl = "TTL" }
    }

    package var result: Result?
}

package struct LeaseRevokeResponse: Codable, Sendable {
    package var header: EtcdHeader?
}

/// What the gateway answers instead when the request failed (gRPC status code and message).
package struct GatewayError: Codable, Sendable {
    package var code: Int?
    package var message: String?
    package var error: String?
}
