import FileStore
import Glibc

/// Who holds a local port, for a start-up error an operator can act on ("port 111 is held by
/// rpcbind (pid 412)"). Reads /proc/net/{tcp,udp}{,6} for the socket's inode, then /proc/*/fd for
/// the process that has it open. A listening socket no process owns belongs to the kernel,
/// which on an NFS server means knfsd.
enum PortOwner {
    static func describe(port: Int) -> String? {
        var inodes: Set<String> = []
        for table in ["tcp", "tcp6", "udp", "udp6"] {
            guard let text = readText("/proc/net/\(table)") else { continue }
            for line in text.split(separator: "\n").dropFirst() {
                let f = line.split(separator: " ", omittingEmptySubsequences: true)
                guard f.count > 9, let colon = f[1].lastIndex(of: ":"),
                      Int(f[1][f[1].index(after: colon)...], radix: 16) == port else { continue }
                // TCP sockets must be listening (state 0A); any bound UDP socket counts.
                if table.hasPrefix("tcp") && f[3] != "0A" { continue }
                inodes.insert(String(f[9]))
            }
        }
        guard !inodes.isEmpty else { return nil }
        if inodes == ["0"] { return "the kernel (nfs-kernel-server, or another in-kernel service)" }
        guard let pids = directoryNames(atPath: "/proc") else { return nil }
        for pid in pids where Int(pid) != nil {
            for fd in directoryNames(atPath: "/proc/\(pid)/fd") ?? [] {
                var target = [CChar](repeating: 0, count: 256)
                let n = readlink("/proc/\(pid)/fd/\(fd)", &target, 255)
                guard n > 0 else { continue }
                let link = String(decoding: target[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
                for inode in inodes where link == "socket:[\(inode)]" {
                    let comm = readText("/proc/\(pid)/comm")?.trimmingSuffix ?? "?"
                    return "\(comm) (pid \(pid))"
                }
            }
        }
        return "another process"
    }

    static func readText(_ path: String) -> String? {
        guard let fp = fopen(path, "r") else { return nil }
        defer { fclose(fp) }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = fread(&buf, 1, buf.count, fp)
            if n <= 0 { break }
            out += buf[0..<n]
        }
        return String(decoding: out, as: UTF8.self)
    }
}

extension String {
    var trimmingSuffix: String {
        var s = self
        while s.last?.isWhitespace == true { s.removeLast() }
        return s
    }
}
