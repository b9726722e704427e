import FileStore
import Glibc
import NIOConcurrencyHelpers
import NIOCore

/// One line's worth of exports(5) options for one client specification.
package struct ExportOptions: Hashable, Sendable {
    package var readOnly = true
    package var sync = true
    package var secure = true
    package var rootSquash = true
    package var allSquash = false
    package var anonUID: UInt32 = 65534
    package var anonGID: UInt32 = 65534
    package var fsid: UInt64?
    package var crossMount = false
    /// SwiftNFS's own option `durable=DIR`: this export's durable directory (the journal and
    /// the checkpointed copy), instead of the server's `--durable-dir`.
    package var durableDirectory: String?

    /// knfsd's defaults (exports(5)): ro, sync, secure, root_squash, no_all_squash, wdelay,
    /// no_subtree_check, hide.
    package init() {}

    /// Applies one option word; throws with a reason for an unknown or malformed one.
    mutating func apply(_ word: Substring) throws(ExportsError.Reason) {
        let (key, value): (Substring, Substring?) = {
            guard let eq = word.firstIndex(of: "=") else { return (word, nil) }
            return (word[..<eq], word[word.index(after: eq)...])
        }()
        func number() throws(ExportsError.Reason) -> UInt32 {
            guard let v = value, let n = UInt32(v) else { throw .badValue(String(word)) }
            return n
        }
        switch key {
        case "ro": readOnly = true
        case "rw": readOnly = false
        case "sync": sync = true
        case "async": sync = false
        case "secure": secure = true
        case "insecure": secure = false
        case "root_squash": rootSquash = true
        case "no_root_squash": rootSquash = false
        case "all_squash": allSquash = true
        case "no_all_squash": allSquash = false
        case "anonuid": anonUID = try number()
        case "anongid": anonGID = try number()
        case "durable":
            guard let v = value, v.hasPrefix("/") else { throw .badValue(String(word)) }
            durableDirectory = String(v)
        case "crossmnt", "nohide": crossMount = true
        case "hide": crossMount = false
        case "subtree_check", "no_subtree_check", "wdelay", "no_wdelay", "secure_locks", "insecure_locks",
             "auth_nlm", "no_auth_nlm", "no_acl", "acl":
            break  // accepted; they change nothing in this server
        case "sec":
            guard let v = value, v.split(separator: ":").allSatisfy({ $0 == "sys" || $0 == "none" }) else {
                throw .unsupported(String(word))
            }
        case "fsid":
            guard let v = value else { throw .badValue(String(word)) }
            if v == "root" || v == "0" { fsid = 0 } else if let n = UInt64(v) { fsid = n } else {
                // A UUID: fold its hex digits into 64 bits.
                let hex = v.filter { $0 != "-" }
                guard hex.count == 32, let hi = UInt64(hex.prefix(16), radix: 16), let lo = UInt64(hex.suffix(16), radix: 16) else {
                    throw .badValue(String(word))
                }
                fsid = hi ^ lo
            }
        default:
            throw .unknownOption(String(word))
        }
    }
}

/// Who an export is for (exports(5) "Machine Name Formats").
package enum ClientSpec: Hashable, Sendable, CustomStringConvertible {
    case everyone
    case address([UInt8])
    case network([UInt8], prefix: Int)
    /// A host name with the addresses it resolved to when the exports were loaded.
    case host(String, addresses: [[UInt8]])
    /// A wildcard host name pattern with * and ?, matched against the caller's reverse lookup.
    case hostname(String)

    package var description: String {
        switch self {
        case .everyone: return "*"
        case .address(let a): return Self.format(a)
        case .network(let a, let p): return "\(Self.format(a))/\(p)"
        case .hostname(let h): return h
        case .host(let h, let addresses): return addresses.isEmpty ? "\(h) (unresolved)" : h
        }
    }

    static func format(_ a: [UInt8]) -> String {
        a.count == 4 ? a.map(String.init).joined(separator: ".") : a.map { String($0, radix: 16) }.joined(separator: ":")
    }

    static func parse(_ s: Substring) throws(ExportsError.Reason) -> ClientSpec {
        if s == "*" { return .everyone }
        if s.hasPrefix("@") { throw .unsupported("netgroup \(s)") }
        if let slash = s.firstIndex(of: "/") {
            guard let addr = parseAddress(s[..<slash]) else { throw .badClient(String(s)) }
            let mask = s[s.index(after: slash)...]
            if let p = Int(mask), p >= 0, p <= addr.count * 8 { return .network(addr, prefix: p) }
            if let m = parseAddress(mask), m.count == addr.count {
                let bits = m.reduce(0) { $0 + $1.nonzeroBitCount }
                return .network(addr, prefix: bits)
            }
            throw .badClient(String(s))
        }
        if let addr = parseAddress(s) { return .address(addr) }
        guard s.allSatisfy({ $0.isLetter || $0.isNumber || "-.*?_[]".contains($0) }) else { throw .badClient(String(s)) }
        if s.contains(where: { "*?[".contains($0) }) { return .hostname(String(s)) }
        return .host(String(s), addresses: resolve(String(s)))
    }

    static func parseAddress(_ s: Substring) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, String(s), &v4) == 1 { return withUnsafeBytes(of: v4) { Array($0) } }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, String(s), &v6) == 1 { return withUnsafeBytes(of: v6) { Array($0) } }
        return nil
    }

    /// The IPv4 and IPv6 addresses of a host name (resolved once, when the exports are loaded,
    /// as knfsd's exportfs does). Empty when it does not resolve.
    static func resolve(_ name: String) -> [[UInt8]] {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(name, nil, &hints, &result) == 0 else { return [] }
        defer { freeaddrinfo(result) }
        var out: [[UInt8]] = []
        var p = result
        while let ai = p {
            if ai.pointee.ai_family == AF_INET {
                let a = ai.pointee.ai_addr.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_addr }
                out.append(withUnsafeBytes(of: a) { Array($0) })
            } else if ai.pointee.ai_family == AF_INET6 {
                let a = ai.pointee.ai_addr.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { $0.pointee.sin6_addr }
                out.append(withUnsafeBytes(of: a) { Array($0) })
            }
            p = ai.pointee.ai_next
        }
        return Array(Set(out)).sorted { $0.lexicographicallyPrecedes($1) }
    }

    /// Whether a caller with this address (4 or 16 bytes) and, if known, host name matches.
    package func matches(address: [UInt8], hostname: String?) -> Bool {
        var address = address
        // IPv4-mapped IPv6 addresses match IPv4 specifications.
        if address.count == 16, address.prefix(12) == [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff] {
            address = Array(address.suffix(4))
        }
        switch self {
        case .everyone: return true
        case .address(let a): return a == address
        case .network(let net, let prefix):
            guard net.count == address.count else { return false }
            var bits = prefix
            for i in 0..<net.count where bits > 0 {
                let take = min(8, bits)
                let mask = UInt8(truncatingIfNeeded: 0xff << (8 - take))
                if net[i] & mask != address[i] & mask { return false }
                bits -= take
            }
            return true
        case .host(_, let addresses):
            return addresses.contains(address)
        case .hostname(let pattern):
            guard let hostname = hostname ?? ReverseLookup.shared.name(of: address) else { return false }
            return fnmatch(pattern.lowercased(), hostname.lowercased(), 0) == 0
        }
    }
}

/// One exported directory with its clients.
package struct ExportEntryConfig: Hashable, Sendable {
    package var path: String
    package var clients: [(ClientSpec, ExportOptions)] {
        get { zip(specs, options).map { ($0, $1) } }
        set { specs = newValue.map(\.0); options = newValue.map(\.1) }
    }
    var specs: [ClientSpec]
    var options: [ExportOptions]

    /// The export's own durable directory (`durable=DIR`; the same for all its clients).
    package var durableDirectory: String? { options.first?.durableDirectory }

    package init(path: String, clients: [(ClientSpec, ExportOptions)]) {
        self.path = path
        self.specs = clients.map(\.0)
        self.options = clients.map(\.1)
    }

    /// The options that apply to a caller, or nil if the caller is not a client of the export.
    /// The first matching specification wins, as in knfsd.
    package func options(address: [UInt8], hostname: String?) -> ExportOptions? {
        for (spec, opts) in clients where spec.matches(address: address, hostname: hostname) { return opts }
        return nil
    }
}

package struct ExportsError: Error, Hashable, Sendable, CustomStringConvertible {
    package enum Reason: Error, Hashable, Sendable {
        case unknownOption(String)
        case badValue(String)
        case unsupported(String)
        case badClient(String)
        case badPath(String)
        case syntax(String)
        case duplicate(String)
        case unreadable(String)
    }
    package var file: String
    package var line: Int
    package var reason: Reason

    package init(file: String, line: Int, reason: Reason) {
        self.file = file
        self.line = line
        self.reason = reason
    }

    package var description: String {
        let why: String = switch reason {
        case .unknownOption(let o): "unknown option '\(o)'"
        case .badValue(let o): "bad value in '\(o)'"
        case .unsupported(let o): "not supported: \(o)"
        case .badClient(let c): "bad client specification '\(c)'"
        case .badPath(let p): "export path must be absolute: '\(p)'"
        case .syntax(let s): s
        case .duplicate(let p): "path exported twice: \(p)"
        case .unreadable(let e): "cannot read: \(e)"
        }
        return "\(file):\(line): \(why)"
    }
}

/// The exports(5) parser.
package enum ExportsParser {
    /// Parses the text of one exports file.
    package static func parse(_ text: String, file: String) throws(ExportsError) -> [ExportEntryConfig] {
        var out: [ExportEntryConfig] = []
        var logical = ""
        var startLine = 0
        for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            var line = Substring(raw)
            if let hash = line.firstIndex(of: "#") { line = line[..<hash] }
            if logical.isEmpty { startLine = i + 1 }
            if line.hasSuffix("\\") {
                logical += line.dropLast() + " "
                continue
            }
            logical += line
            defer { logical = "" }
            guard !logical.allSatisfy(\.isWhitespace) else { continue }
            do throws(ExportsError.Reason) {
                let entry = try parseLine(logical)
                guard !out.contains(where: { $0.path == entry.path }) else { throw ExportsError.Reason.duplicate(entry.path) }
                out.append(entry)
            } catch {
                throw ExportsError(file: file, line: startLine, reason: error)
            }
        }
        return out
    }

    static func parseLine(_ line: String) throws(ExportsError.Reason) -> ExportEntryConfig {
        var words = try tokenize(line)
        guard !words.isEmpty else { throw .syntax("empty line") }
        let path = words.removeFirst()
        guard path.hasPrefix("/") else { throw .badPath(path) }
        var defaults = ExportOptions()
        var clients: [(ClientSpec, ExportOptions)] = []
        for word in words {
            if word.hasPrefix("-") {
                for o in word.dropFirst().split(separator: ",") { try defaults.apply(o) }
                continue
            }
            var spec = Substring(word)
            var opts = defaults
            if let open = word.firstIndex(of: "(") {
                guard word.hasSuffix(")") else { throw .syntax("unbalanced parenthesis in '\(word)'") }
                spec = word[..<open]
                for o in word[word.index(after: open)..<word.index(before: word.endIndex)].split(separator: ",") {
                    try opts.apply(o)
                }
            }
            clients.append((spec.isEmpty ? .everyone : try ClientSpec.parse(spec), opts))
        }
        if clients.isEmpty { clients = [(.everyone, defaults)] }
        guard Set(clients.map(\.1.durableDirectory)).count == 1 else {
            throw .syntax("durable= differs between the clients of \(path); an export has one durable directory")
        }
        var normalized = path
        while normalized.count > 1 && normalized.hasSuffix("/") { normalized.removeLast() }
        return ExportEntryConfig(path: normalized, clients: clients)
    }

    /// Splits on white space, keeping double-quoted paths (which may contain spaces) whole.
    static func tokenize(_ line: String) throws(ExportsError.Reason) -> [String] {
        var words: [String] = []
        var cur = ""
        var quoted = false
        for ch in line {
            if ch == "\"" { quoted.toggle(); continue }
            if ch.isWhitespace && !quoted {
                if !cur.isEmpty { words.append(cur); cur = "" }
            } else {
                cur.append(ch)
            }
        }
        if quoted { throw .syntax("unterminated quote") }
        if !cur.isEmpty { words.append(cur) }
        return words
    }

    /// Reads `path`, and for /etc/exports also /etc/exports.d/*.exports.
    package static func load(path: String) throws(ExportsError) -> [ExportEntryConfig] {
        var files = [path]
        if path == "/etc/exports", let names = directoryNames(atPath: "/etc/exports.d") {
            files += names.filter { $0.hasSuffix(".exports") }.sorted().map { "/etc/exports.d/\($0)" }
        }
        var all: [ExportEntryConfig] = []
        for f in files {
            guard let text = readFile(f) else {
                throw ExportsError(file: f, line: 0, reason: .unreadable(String(cString: strerror(errno))))
            }
            for e in try parse(text, file: f) {
                guard !all.contains(where: { $0.path == e.path }) else {
                    throw ExportsError(file: f, line: 0, reason: .duplicate(e.path))
                }
                all.append(e)
            }
        }
        return all
    }

    static func readFile(_ path: String) -> String? {
        guard let fp = fopen(path, "r") else { return nil }
        defer { fclose(fp) }
        var data: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = fread(&buf, 1, buf.count, fp)
            if n <= 0 { break }
            data += buf[0..<n]
        }
        return String(decoding: data, as: UTF8.self)
    }
}

/// Reverse lookups of callers for wildcard host names, cached for five minutes.
final class ReverseLookup: Sendable {
    static let shared = ReverseLookup()
    private let cache = NIOLockedValueBox<[[UInt8]: (String?, NIODeadline)]>([:])

    func name(of address: [UInt8]) -> String? {
        let now = NIODeadline.now()
        if let (name, expiry) = cache.withLockedValue({ $0[address] }), expiry > now { return name }
        let name = Self.lookup(address)
        cache.withLockedValue { c in
            if c.count > 4096 { c.removeAll() }
            c[address] = (name, now + .minutes(5))
        }
        return name
    }

    static func lookup(_ address: [UInt8]) -> String? {
        var host = [CChar](repeating: 0, count: 1025)
        let r: Int32
        if address.count == 4 {
            var sa = sockaddr_in()
            sa.sin_family = sa_family_t(AF_INET)
            withUnsafeMutableBytes(of: &sa.sin_addr) { $0.copyBytes(from: address) }
            r = withUnsafePointer(to: &sa) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    getnameinfo($0, socklen_t(MemoryLayout<sockaddr_in>.size), &host, 1025, nil, 0, NI_NAMEREQD)
                }
            }
        } else {
            var sa = sockaddr_in6()
            sa.sin6_family = sa_family_t(AF_INET6)
            withUnsafeMutableBytes(of: &sa.sin6_addr) { $0.copyBytes(from: address) }
            r = withUnsafePointer(to: &sa) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    getnameinfo($0, socklen_t(MemoryLayout<sockaddr_in6>.size), &host, 1025, nil, 0, NI_NAMEREQD)
                }
            }
        }
        guard r == 0 else { return nil }
        return String(decoding: host.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
