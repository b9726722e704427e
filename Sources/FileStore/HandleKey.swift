import Glibc

extension SipHash24 {
    /// The server's handle key: 16 random bytes in `stateDirectory/handle-key` (mode 0600),
    /// created at first start. Keep it with the state directory: a new key makes every handle
    /// that clients hold stale.
    public static func loadOrCreate(stateDirectory: String) throws -> SipHash24 {
        SipHash24(key: try handleKeyBytes(stateDirectory: stateDirectory))
    }

    /// The bytes of the handle key in `stateDirectory` (created at first call). A cluster's
    /// nodes compare them with the key they share (see `storeHandleKey`).
    public static func handleKeyBytes(stateDirectory: String) throws -> [UInt8] {
        try FileStore.makeDirectories(stateDirectory)
        let path = stateDirectory + "/handle-key"
        var key = [UInt8](repeating: 0, count: 16)
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd >= 0 {
            defer { close(fd) }
            let n = key.withUnsafeMutableBytes { read(fd, $0.baseAddress, 16) }
            guard n == 16 else { throw StoreError(.io, operation: "handle key \(path) is damaged (\(n) bytes)") }
            return key
        }
        guard errno == ENOENT else { throw StoreError(errno: errno, operation: "open \(path)") }
        var rng = SystemRandomNumberGenerator()
        for i in 0..<16 { key[i] = UInt8.random(in: 0...255, using: &rng) }
        try storeHandleKey(key, stateDirectory: stateDirectory)
        return key
    }

    /// Replaces the handle key in `stateDirectory` (a cluster node takes the cluster's, so that
    /// handles resolve identically on every node). Handles signed with the old key go stale.
    public static func storeHandleKey(_ key: [UInt8], stateDirectory: String) throws {
        precondition(key.count == 16, "a handle key has 16 bytes")
        try FileStore.makeDirectories(stateDirectory)
        let path = stateDirectory + "/handle-key"
        // Write to a temporary name and rename, so a crash never leaves half a key.
        let tmp = path + ".tmp"
        let out = try sys("create \(tmp)") { open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600) }
        defer { close(out) }
        let n = key.withUnsafeBytes { write(out, $0.baseAddress, 16) }
        guard n == 16 else { throw StoreError(errno: errno, operation: "write \(tmp)") }
        _ = try sys("fsync \(tmp)") { fsync(out) }
        _ = try sys("rename \(tmp)") { rename(tmp, path) }
    }
}
