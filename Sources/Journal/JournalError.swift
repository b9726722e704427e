/// The journal's error type.
public struct JournalError: Error, Hashable, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let name: String
        /// Writing or syncing the journal on the durable directory failed.
        public static let io = Code(name: "io")
        /// The durable directory is full.
        public static let noSpace = Code(name: "noSpace")
        /// A segment is damaged beyond a torn tail.
        public static let damaged = Code(name: "damaged")
        public var description: String { name }
    }

    public var code: Code
    public var detail: String

    public init(_ code: Code, _ detail: String) {
        self.code = code
        self.detail = detail
    }

    public var description: String { "journal \(code): \(detail)" }
}
