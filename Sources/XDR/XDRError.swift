/// The one error type of the XDR layer (RFC 4506). Extensible `Code` in the style of swift-asn1.
public struct XDRError: Error, Hashable, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        enum Base: Hashable, Sendable {
            case truncated, lengthExceedsLimit, nonZeroPadding, invalidEnum, trailingBytes, invalidBool
        }
        let base: Base
        /// Fewer bytes were left than the item needs.
        public static let truncated = Code(base: .truncated)
        /// A wire length was larger than the named limit that applies to it.
        public static let lengthExceedsLimit = Code(base: .lengthExceedsLimit)
        /// RFC 4506 §3: "the residual bytes are set to zero" — we enforce it on input.
        public static let nonZeroPadding = Code(base: .nonZeroPadding)
        /// An enum discriminant outside the declared set.
        public static let invalidEnum = Code(base: .invalidEnum)
        /// A complete message had bytes left over after its body.
        public static let trailingBytes = Code(base: .trailingBytes)
        /// RFC 4506 §4.4: a bool is 0 or 1.
        public static let invalidBool = Code(base: .invalidBool)
        public var description: String { String(describing: base) }
    }

    public let code: Code
    public let detail: String

    public init(_ code: Code, _ detail: String = "") {
        self.code = code
        self.detail = detail
    }

    public var description: String { detail.isEmpty ? "XDR \(code)" : "XDR \(code): \(detail)" }
}
