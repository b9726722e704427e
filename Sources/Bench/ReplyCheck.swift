import NFS3
import NIOCore

/// The checks made on every reply beyond its status, kept apart from the I/O so that tests can
/// feed them wrong replies. Each throws `BenchError` naming what is wrong.
package enum ReplyCheck {
    /// A READ of `count` bytes at `offset` of `file` must return exactly those bytes (the file is
    /// large enough), with eof set only when they end the file.
    package static func read(_ reply: NFS3ReadOkay, offset: UInt64, count: Int, file: PatternedFile) throws {
        guard reply.data.readableBytes == count else {
            throw BenchError(.countMismatch, procedure: "READ",
                             "asked \(count) bytes at \(offset), got \(reply.data.readableBytes)")
        }
        let endsFile = offset + UInt64(count) >= UInt64(file.size)
        guard reply.eof == endsFile else {
            throw BenchError(.unexpectedReply, procedure: "READ", "eof \(reply.eof) at \(offset)+\(count) of \(file.size)")
        }
        guard reply.data == file.slice(offset: offset, count: count) else {
            throw BenchError(.dataMismatch, procedure: "READ", "\(count) bytes at \(offset) differ from what was written")
        }
    }

    /// A WRITE must take every byte, and be at least as stable as asked.
    package static func write(_ reply: NFS3WriteOkay, count: Int, stable: NFS3StableHow) throws {
        guard reply.count == count else {
            throw BenchError(.countMismatch, procedure: "WRITE", "sent \(count) bytes, server took \(reply.count)")
        }
        guard reply.committed.rawValue >= stable.rawValue else {
            throw BenchError(.unexpectedReply, procedure: "WRITE", "asked \(stable), server committed \(reply.committed)")
        }
    }

    /// A COMMIT's verifier must be the one of the WRITEs it commits (RFC 1813 §3.3.21): a
    /// different one means the server lost them and the client would have to send them again.
    package static func commit(_ reply: NFS3CommitOkay, writeVerifier: NFS3Verifier) throws {
        guard reply.verifier == writeVerifier else {
            throw BenchError(.unexpectedReply, procedure: "COMMIT",
                             "verifier \(reply.verifier.value) is not the WRITE's \(writeVerifier.value)")
        }
    }

    /// GETATTR, LOOKUP and friends must describe an object of the expected type.
    package static func attributes(_ attributes: NFS3FileAttributes?, type: NFS3FileType, procedure: NFS3Procedure,
                                  size: UInt64? = nil) throws {
        guard let attributes else {
            // post_op_attr may legally be absent; GETATTR's is not optional and never reaches here nil.
            return
        }
        guard attributes.type == type else {
            throw BenchError(.unexpectedReply, procedure: procedure.name, "type \(attributes.type), expected \(type)")
        }
        if let size, attributes.size != size {
            throw BenchError(.unexpectedReply, procedure: procedure.name, "size \(attributes.size), expected \(size)")
        }
    }

    /// ACCESS must grant what the benchmark's root caller may do to its own file.
    package static func access(_ reply: NFS3AccessOkay, asked: UInt32, required: UInt32) throws {
        guard reply.access & ~asked == 0 else {
            throw BenchError(.unexpectedReply, procedure: "ACCESS", "granted bits \(reply.access) beyond the asked \(asked)")
        }
        guard reply.access & required == required else {
            throw BenchError(.unexpectedReply, procedure: "ACCESS", "granted \(reply.access), needed \(required)")
        }
    }
}

/// Counts the entries of a listing of the prepared directory (names `prefix` followed by a
/// decimal index below `expected`) as pages arrive, and checks at the end that each index was
/// seen exactly once.
package struct ListingCheck: Sendable {
    let prefix: [UInt8]
    let expected: Int
    private var seen: [Bool]
    private var count = 0

    package init(prefix: [UInt8], expected: Int) {
        self.prefix = prefix
        self.expected = expected
        self.seen = Array(repeating: false, count: expected)
    }

    /// The index in a name `prefix` + decimal digits, if it is one and below `limit`.
    package static func index(of name: [UInt8], prefix: [UInt8], below limit: Int) -> Int? {
        guard name.count > prefix.count, name.count <= prefix.count + 9, name.starts(with: prefix) else { return nil }
        var index = 0
        for digit in name[prefix.count...] {
            guard (48...57).contains(digit) else { return nil }
            index = index * 10 + Int(digit - 48)
        }
        return index < limit ? index : nil
    }

    package static func isDotOrDotDot(_ name: [UInt8]) -> Bool { name == [46] || name == [46, 46] }

    package mutating func add(name: [UInt8]) throws {
        if Self.isDotOrDotDot(name) { return }
        guard let index = Self.index(of: name, prefix: prefix, below: expected), !seen[index] else {
            throw BenchError(.unexpectedReply, procedure: "READDIRPLUS",
                             "entry \(String(decoding: name, as: UTF8.self)) unexpected or listed twice")
        }
        seen[index] = true
        count += 1
    }

    package func finish() throws {
        guard count == expected else {
            throw BenchError(.countMismatch, procedure: "READDIRPLUS", "listed \(count) entries, expected \(expected)")
        }
    }

    /// The indices not seen (to create the missing entries of the cached directory).
    package var missing: [Int] { seen.indices.filter { !seen[$0] } }
}
