/// What went wrong talking to etcd.
package struct EtcdError: Error, Hashable, Sendable, CustomStringConvertible {
    package struct Code: Hashable, Sendable, CustomStringConvertible {
        package let name: String
        /// No endpoint answered in time (refused, unreachable, timed out): `detail` names each.
        package static let unreachable = Code(name: "unreachable")
        /// etcd answered with an error (its gRPC status and message are in `detail`).
        package static let server = Code(name: "server")
        /// The answer was not what the API promises (not JSON, a field missing).
        package static let malformedResponse = Code(name: "malformedResponse")
        /// A lease this node relies on no longer exists.
        package static let leaseNotFound = Code(name: "leaseNotFound")
        /// A stored value is not what this package writes (a key set by hand, say).
        package static let malformedValue = Code(name: "malformedValue")
        package var description: String { name }
    }

    package var code: Code
    package var detail: String

    package init(_ code: Code, _ detail: String) {
        self.code = code
        self.detail = detail
    }

    package var description: String {
        switch code {
        case .unreachable: "etcd is unreachable: \(detail)"
        default: "etcd \(code): \(detail)"
        }
    }
}
