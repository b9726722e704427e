/// The journal's error type.
package struct JournalError: Error, Hashable, Sendable, CustomStringConvertible {
    package struct Code: Hashable, Sendable, CustomStringConvertible {
        package let name: String
        /// Writing or syncing the journal on the durable directory failed.
        package static let io = Code(name: "io")
        /// The durable directory is full.
        package static let noSpace = Code(name: "noSpace")
        /// A segment is damaged beyond a torn tail.
        package static let damaged = Code(name: "damaged")
        /// A full copy received from an HA active does not hold together (a path that is not
        /// plain and relative, content without its file, counts that do not match): refused.
        package static let badFullCopy = Code(name: "badFullCopy")
        package var description: String { name }
    }

    package var code: Code
    package var detail: String

    package init(_ code: Code, _ detail: String) {
        self.code = code
        self.detail = detail
    }

    package var description: String { "journal \(code): \(detail)" }
}
