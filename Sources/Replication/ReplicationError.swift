/// The replication link's error type.
package struct ReplicationError: Error, Hashable, Sendable, CustomStringConvertible {
    package struct Code: Hashable, Sendable, CustomStringConvertible {
        package let name: String
        /// The peer sent something this side does not take (the connection is dropped).
        package static let protocolViolation = Code(name: "protocolViolation")
        /// A received journal frame failed its checks: not appended, the connection dropped.
        package static let badFrame = Code(name: "badFrame")
        /// A full copy from the active does not hold together (a path outside the copy,
        /// content without its file): nothing of it is installed, the connection dropped.
        package static let badFullCopy = Code(name: "badFullCopy")
        /// The active's journal does not reach back to what this standby lacks.
        package static let fullCopyNeeded = Code(name: "fullCopyNeeded")
        /// The active refused the standby.
        package static let refused = Code(name: "refused")
        /// The local journal could not take a record.
        package static let journal = Code(name: "journal")
        package var description: String { name }
    }

    package var code: Code
    package var detail: String

    package init(_ code: Code, _ detail: String) {
        self.code = code
        self.detail = detail
    }

    package var description: String { "replication \(code): \(detail)" }
}
