// Limits and numbers of ONC RPC (RFC 5531), each with the reason it has the value it has.

public enum RPCLimits {
    /// RFC 5531 §8.2: "opaque body<400>" for every credential and verifier.
    public static let maxAuthBody = 400
    /// RFC 5531 appendix A: "string machinename<255>".
    public static let maxMachineName = 255
    /// RFC 5531 appendix A: "unsigned int gids<16>".
    public static let maxAuthSysGroups = 16
    /// Largest record we reassemble on TCP: a 1 MiB WRITE (our wtmax) plus headers and slack.
    /// Anything larger is a protocol violation and the connection is closed.
    public static let maxRecordSize = 1 << 20 + 64 * 1024
    /// Fragments per record. Real clients send one; libtirpc with a small send buffer sends a
    /// few hundred for a 1 MiB write. More is an attack on our bookkeeping.
    public static let maxFragmentsPerRecord = 1024
    /// Largest UDP datagram we accept or send.
    public static let maxDatagramSize = 65_507
}

/// RFC 5531 §9: the RPC protocol version this server speaks.
public let rpcVersion: UInt32 = 2

/// RFC 5531 §9 msg_type.
public enum RPCMessageType: UInt32, Sendable {
    case call = 0
    case reply = 1
}

/// RFC 5531 §9 reply_stat.
public enum RPCReplyStat: UInt32, Sendable {
    case accepted = 0
    case denied = 1
}

/// RFC 5531 §9 accept_stat.
public enum RPCAcceptStat: UInt32, Sendable {
    case success = 0
    case progUnavail = 1
    case progMismatch = 2
    case procUnavail = 3
    case garbageArgs = 4
    case systemErr = 5
}

/// RFC 5531 §9 reject_stat.
public enum RPCRejectStat: UInt32, Sendable {
    case rpcMismatch = 0
    case authError = 1
}

/// RFC 5531 §9 auth_stat.
public enum RPCAuthStat: UInt32, Sendable {
    case ok = 0
    case badCred = 1
    case rejectedCred = 2
    case badVerf = 3
    case rejectedVerf = 4
    case tooWeak = 5
    case invalidResp = 6
    case failed = 7
}

/// RFC 5531 §8.2 auth_flavor numbers we know by name.
public enum RPCAuthFlavor {
    public static let none: UInt32 = 0
    public static let sys: UInt32 = 1
    public static let short: UInt32 = 2
    public static let dh: UInt32 = 3
    public static let rpcsecGSS: UInt32 = 6
}
