import NIOCore

// RFC 4506 primitives as symmetric read/write pairs on ByteBuffer.
// Reads advance the reader index and throw XDRError on truncation or malformed data, leaving
// the buffer's reader index unspecified (a body is parsed from one complete record, so a failed
// parse discards the record). Writes return the number of bytes written.

extension ByteBuffer {
    // MARK: Integers — RFC 4506 §4.1, §4.2, §4.5

    @inlinable
    public mutating func readXDRUInt32() throws -> UInt32 {
        guard let v = self.readInteger(endianness: .big, as: UInt32.self) else {
            throw XDRError(.truncated, "uint32")
        }
        return v
    }

    @inlinable
    @discardableResult
    public mutating func writeXDRUInt32(_ value: UInt32) -> Int {
        self.writeInteger(value, endianness: .big)
    }

    @inlinable
    public mutating func readXDRInt32() throws -> Int32 {
        Int32(bitPattern: try self.readXDRUInt32())
    }

    @inlinable
    @discardableResult
    public mutating func writeXDRInt32(_ value: Int32) -> Int {
        self.writeXDRUInt32(UInt32(bitPattern: value))
    }

    @inlinable
    public mutating func readXDRUInt64() throws -> UInt64 {
        guard let v = self.readInteger(endianness: .big, as: UInt64.self) else {
            throw XDRError(.truncated, "uint64")
        }
        return v
    }

    @inlinable
    @discardableResult
    public mutating func writeXDRUInt64(_ value: UInt64) -> Int {
        self.writeInteger(value, endianness: .big)
    }

    @inlinable
    public mutating func readXDRInt64() throws -> Int64 {
        Int64(bitPattern: try self.readXDRUInt64())
    }

    @inlinable
    @discardableResult
    public mutating func writeXDRInt64(_ value: Int64) -> Int {
        self.writeXDRUInt64(UInt64(bitPattern: value))
    }

    // MARK: Bool — RFC 4506 §4.4

    @inlinable
    public mutating func readXDRBool() throws -> Bool {
        switch try self.readXDRUInt32() {
        case 0: return false
        case 1: return true
        case let v: throw XDRError(.invalidBool, "\(v)")
        }
    }

    @inlinable
    @discardableResult
    public mutating func writeXDRBool(_ value: Bool) -> Int {
        self.writeXDRUInt32(value ? 1 : 0)
    }

    // MARK: Enums — RFC 4506 §4.3

    /// Reads an enum whose raw values are UInt32, rejecting values outside the declared set.
    @inlinable
    public mutating func readXDREnum<E: RawRepresentable>(_: E.Type) throws -> E where E.RawValue == UInt32 {
        let raw = try self.readXDRUInt32()
        guard let e = E(rawValue: raw) else { throw XDRError(.invalidEnum, "\(E.self) \(raw)") }
        return e
    }

    @inlinable
    @discardableResult
    public mutating func writeXDREnum<E: RawRepresentable>(_ value: E) -> Int where E.RawValue == UInt32 {
        self.writeXDRUInt32(value.rawValue)
    }

    // MARK: Padding — RFC 4506 §3

    @inlinable
    public static func xdrPadding(for length: Int) -> Int { (4 - (length & 3)) & 3 }

    @inlinable
    mutating func skipXDRPadding(after length: Int) throws {
        let pad = ByteBuffer.xdrPadding(for: length)
        guard pad > 0 else { return }
        guard let bytes = self.readBytes(length: pad) else { throw XDRError(.truncated, "padding") }
        guard bytes.allSatisfy({ $0 == 0 }) else { throw XDRError(.nonZeroPadding) }
    }

    @inlinable
    @discardableResult
    public mutating func writeXDRPadding(after length: Int) -> Int {
        let pad = ByteBuffer.xdrPadding(for: length)
        if pad > 0 { self.writeRepeatingByte(0, count: pad) }
        return pad
    }

    // MARK: Fixed-length opaque — RFC 4506 §4.9

    /// Reads `length` bytes as a zero-copy slice and consumes the padding.
    @inlinable
    public mutating func readXDRFixedOpaque(length: Int) throws -> ByteBuffer {
        guard let slice = self.readSlice(length: length) else { throw XDRError(.truncated, "opaque[\(length)]") }
        try self.skipXDRPadding(after: length)
        return slice
    }

    @inlinable
    @discardableResult
    public mutating func writeXDRFixedOpaque(_ bytes: ByteBuffer) -> Int {
        var bytes = bytes
        let n = self.writeBuffer(&bytes)
        return n + self.writeXDRPadding(after: n)
    }

    // MARK: Variable-length opaque — RFC 4506 §4.10

    /// Reads `opaque<limit>` as a zero-copy slice. The length is checked against `limit`
    /// (and against what is left) before anything is touched.
    @inlinable
    public mutating func readXDRVariableOpaque(limit: Int) throws -> ByteBuffer {
        let length = try self.readXDRUInt32()
        guard length <= limit else { throw XDRError(.lengthExceedsLimit, "opaque<\(limit)> got \(length)") }
        return try self.readXDRFixedOpaque(length: Int(length))
    }

    @inlinable
    @discardableResult
    public mutating func writeXDRVariableOpaque(_ bytes: ByteBuffer) -> Int {
        self.writeXDRUInt32(UInt32(bytes.readableBytes)) + self.writeXDRFixedOpaque(bytes)
    }

    @inlinable
    @discardableResult
    public mutating func writeXDRVariableOpaque(bytes: some Collection<UInt8>) -> Int {
        let n = self.writeXDRUInt32(UInt32(bytes.count)) + self.writeBytes(bytes)
        return n + self.writeXDRPadding(after: bytes.count)
    }

    // MARK: String — RFC 4506 §4.11

    /// Reads `string<limit>`. Bytes are taken as UTF-8 with repair; NFS names are opaque bytes
    /// in practice, so callers that need exact bytes use `readXDRVariableOpaque`.
    @inlinable
    public mutating func readXDRString(limit: Int) throws -> String {
        let bytes = try self.readXDRVariableOpaque(limit: limit)
        return String(buffer: bytes)
    }

    @inlinable
    @discardableResult
    public mutating func writeXDRString(_ string: String) -> Int {
        let n = self.writeXDRUInt32(UInt32(string.utf8.count)) + self.writeString(string)
        return n + self.writeXDRPadding(after: string.utf8.count)
    }

    // MARK: Optional data — RFC 4506 §4.19

    @inlinable
    public mutating func readXDROptional<T>(_ body: (inout ByteBuffer) throws -> T) throws -> T? {
        try self.readXDRBool() ? body(&self) : nil
    }

    @inlinable
    @discardableResult
    public mutating func writeXDROptional<T>(_ value: T?, _ body: (inout ByteBuffer, T) -> Int) -> Int {
        guard let value else { return self.writeXDRBool(false) }
        return self.writeXDRBool(true) + body(&self, value)
    }

    // MARK: Variable-length array — RFC 4506 §4.13

    @inlinable
    public mutating func readXDRArray<T>(limit: Int, _ element: (inout ByteBuffer) throws -> T) throws -> [T] {
        let count = try self.readXDRUInt32()
        guard count <= limit else { throw XDRError(.lengthExceedsLimit, "array<\(limit)> got \(count)") }
        // Every element takes at least 4 bytes: refuse counts the record cannot hold before reserving.
        guard Int(count) <= self.readableBytes / 4 else { throw XDRError(.truncated, "array of \(count)") }
        var out: [T] = []
        out.reserveCapacity(Int(count))
        for _ in 0..<count { out.append(try element(&self)) }
        return out
    }

    @inlinable
    @discardableResult
    public mutating func writeXDRArray<T>(_ values: [T], _ element: (inout ByteBuffer, T) -> Int) -> Int {
        var n = self.writeXDRUInt32(UInt32(values.count))
        for v in values { n += element(&self, v) }
        return n
    }

    /// Throws unless the buffer has been consumed entirely (a strict body, RFC 5531 §8 GARBAGE_ARGS).
    @inlinable
    public func expectXDREnd() throws {
        guard self.readableBytes == 0 else { throw XDRError(.trailingBytes, "\(self.readableBytes) bytes") }
    }
}
