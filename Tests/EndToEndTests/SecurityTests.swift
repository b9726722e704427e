import Foundation
import NFS3
import NFS3Client
import NIOCore
import NIOPosix
import ONCRPC
import SwiftNFSTesting
import Testing
import XDR

#if canImport(Glibc)
import Glibc
#endif

/// Access control and hostile input, through the wire: exports(5) client lists and options,
/// AUTH_SYS identities, forged handles, symlink escapes, and floods of garbage.
@Suite("Access control and hostile input", .serialized)
struct SecurityTests {
    let group = MultiThreadedEventLoopGroup.singleton

    /// A server for an exports file written by `exports(exportPath, squashDir)`.
    func withServer(exports: (String, String) -> String, _ body: (ServerProcess, String) async throws -> Void) async throws {
        func squashed(_ server: ServerProcess) -> String { server.root.appendingPathComponent("squashed").path }
        try await ServerProcess.with(portmap: .none, configure: { server in
            try FileManager.default.createDirectory(atPath: squashed(server), withIntermediateDirectories: true)
            let file = server.root.appendingPathComponent("exports").path
            try exports(server.exportPath, squashed(server)).write(toFile: file, atomically: true, encoding: .utf8)
            server.exportsFile = file
            // The export root is root's and not writable by others, whatever the umask.
            chmod(server.exportPath, 0o755)
            // A world-writable directory and a root-only file inside the export.
            try FileManager.default.createDirectory(atPath: server.exportPath + "/open", withIntermediateDirectories: true)
            chmod(server.exportPath + "/open", 0o777)
            chmod(squashed(server), 0o777)
            FileManager.default.createFile(atPath: server.exportPath + "/secret", contents: Data("root only".utf8))
            chmod(server.exportPath + "/secret", 0o600)
        }) { server in
            try await body(server, squashed(server))
        }
    }

    func client(_ server: ServerProcess, from address: String, port: Int = 0, uid: UInt32, gid: UInt32,
                groups: [UInt32] = []) async throws -> NFS3Client {
        try await NFS3Client.connect(
            to: try SocketAddress(ipAddress: "127.0.0.1", port: server.nfsPort),
            from: try SocketAddress(ipAddress: address, port: port),
            credentials: .sys(AuthSysParameters(machineName: "test", uid: uid, gid: gid, groups: groups)),
            timeout: .seconds(10), group: group)
    }

    func owner(_ path: String) -> (UInt32, UInt32) {
        var st = stat()
        stat(path, &st)
        return (st.st_uid, st.st_gid)
    }

    func fails<T>(_ expected: String, _ body: () async throws -> T) async {
        do {
            _ = try await body()
            Issue.record("expected \(expected), but the call succeeded")
        } catch {
            #expect("\(error)".contains(expected), "expected \(expected), got \(error)")
        }
    }

    @Test("exports(5) client lists, ro, secure, root_squash, all_squash and caller identities")
    func exportsMatrix() async throws {
        try await withServer(exports: { export, squashed in
            """
            \(export) 127.0.0.1(rw,insecure) 127.0.0.2(ro,insecure) 127.0.0.3(rw,secure,no_root_squash)
            \(squashed) 127.0.0.0/8(rw,insecure,all_squash,anonuid=4242,anongid=4343)
            """
        }) { server, squashed in
            let export = server.exportPath
            // 127.0.0.1, rw with the default root_squash: root becomes nobody.
            let rootClient = try await client(server, from: "127.0.0.1", uid: 0, gid: 0)
            let root = try await rootClient.mount(export)
            await fails("NFS3ERR_ACCES") { try await rootClient.create(root, Array("by-root".utf8)) }
            let open = try await rootClient.lookup(root, Array("open".utf8)).object
            _ = try await rootClient.create(open, Array("squashed-root".utf8))
            #expect(owner(export + "/open/squashed-root") == (65534, 65534))
            await fails("NFS3ERR_ACCES") {
                try await rootClient.read(try await rootClient.lookup(root, Array("secret".utf8)).object, offset: 0, count: 100)
            }
            await rootClient.close()

            // An ordinary user: files are the caller's; permissions are the kernel's.
            let user = try await client(server, from: "127.0.0.1", uid: 1000, gid: 1000, groups: [1000, 27])
            let userRoot = try await user.mount(export)
            let userOpen = try await user.lookup(userRoot, Array("open".utf8)).object
            _ = try await user.create(userOpen, Array("mine".utf8))
            #expect(owner(export + "/open/mine") == (1000, 1000))
            let secret = try await user.lookup(userRoot, Array("secret".utf8)).object
            let access = try await user.access(secret, mask: NFS3AccessMask.read | NFS3AccessMask.modify)
            #expect(access.access == 0, "a 0600 root file grants nothing to uid 1000")
            let mine = try await user.lookup(userOpen, Array("mine".utf8)).object
            let myAccess = try await user.access(mine, mask: NFS3AccessMask.read | NFS3AccessMask.modify)
            #expect(myAccess.access == NFS3AccessMask.read | NFS3AccessMask.modify)
            await user.close()

            // 127.0.0.2: read-only.
            let reader = try await client(server, from: "127.0.0.2", uid: 1000, gid: 1000)
            let readerRoot = try await reader.mount(export)
            let readerOpen = try await reader.lookup(readerRoot, Array("open".utf8)).object
            await fails("NFS3ERR_ROFS") { try await reader.create(readerOpen, Array("nope".utf8)) }
            await fails("NFS3ERR_ROFS") { try await reader.write(mine, offset: 0, data: ByteBuffer(string: "x"), stable: .fileSync) }
            #expect(try await reader.getattr(mine).uid == 1000)
            await reader.close()

            // 127.0.0.3: secure. An unprivileged source port is refused, a privileged one is
            // served, and root is not squashed there.
            let insecure = try await client(server, from: "127.0.0.3", uid: 0, gid: 0)
            await fails("MNT3ERR_ACCES") { try await insecure.mount(export) }
            await fails("NFS3ERR_PERM") { try await insecure.getattr(userRoot) }
            await insecure.close()
            let privileged = try await client(server, from: "127.0.0.3", port: 700 + Int.random(in: 0..<200), uid: 0, gid: 0)
            let privilegedRoot = try await privileged.mount(export)
            _ = try await privileged.create(privilegedRoot, Array("by-real-root".utf8))
            #expect(owner(export + "/by-real-root") == (0, 0))
            await privileged.close()

            // 127.0.0.4 is no client of the first export.
            let stranger = try await client(server, from: "127.0.0.4", uid: 1000, gid: 1000)
            await fails("MNT3ERR_ACCES") { try await stranger.mount(export) }
            await fails("NFS3ERR_ACCES") { try await stranger.getattr(userRoot) }
            // Refusals are logged once per client and reason, not once per call.
            for _ in 0..<20 { _ = try? await stranger.getattr(userRoot) }
            try await Task.sleep(for: .milliseconds(200))
            let log = server.logTail(lines: 1000)
            let refusals = log.split(separator: "\n").filter { $0.contains("nfs call refused") && $0.contains("nfs.client=127.0.0.4") }
            #expect(refusals.count == 1, "one log line for 21 refused calls, got \(refusals.count)")
            // all_squash on the second export maps everyone to anonuid/anongid.
            let squashedRoot = try await stranger.mount(squashed)
            _ = try await stranger.create(squashedRoot, Array("anon".utf8))
            #expect(owner(squashed + "/anon") == (4242, 4343))
            await stranger.close()
        }
    }

    @Test("forged, altered, truncated and over-long handles resolve to nothing")
    func forgedHandles() async throws {
        try await withServer(exports: { export, squashed in "\(export) 127.0.0.1(rw,insecure,no_root_squash)\n\(squashed) 127.0.0.1(rw,insecure)\n" }) { server, squashed in
            let c = try await client(server, from: "127.0.0.1", uid: 0, gid: 0)
            let root = try await c.mount(server.exportPath)
            let file = try await c.lookup(root, Array("secret".utf8)).object
            let other = try await c.mount(squashed)
            var refused = 0
            var candidates: [[UInt8]] = []
            for i in file.bytes.indices {
                for flip: UInt8 in [0x01, 0x80, 0xff] {
                    var b = file.bytes
                    b[i] ^= flip
                    candidates.append(b)
                }
            }
            candidates.append(Array(file.bytes.dropLast()))
            candidates.append(Array(file.bytes.prefix(8)))
            candidates.append([])
            candidates.append(file.bytes + [0])
            candidates.append([UInt8](repeating: 0, count: 64))
            // The other export's root with this export's file id: signed for the other export.
            candidates.append(Array(other.bytes.prefix(9)) + Array(file.bytes[9..<17]) + Array(other.bytes.suffix(8)))
            for bytes in candidates {
                var args = ByteBuffer()
                args.writeNFS3GetattrCall(NFS3GetattrCall(object: NFS3FileHandle(bytes)))
                let status = try await c.status(of: .getattr, arguments: args)
                #expect(status == .badhandle || status == .stale, "handle \(bytes) gave \(status)")
                if status == .badhandle || status == .stale { refused += 1 }
            }
            #expect(refused == candidates.count)
            // Longer than NFS3_FHSIZE is not even a handle: GARBAGE_ARGS, and the server serves on.
            var tooLong = ByteBuffer()
            tooLong.writeXDRVariableOpaque(bytes: [UInt8](repeating: 1, count: 65))
            await fails("garbageArgs") { try await c.status(of: .getattr, arguments: tooLong) }
            #expect(try await c.getattr(file).size == 9)
            await c.close()
        }
    }

    @Test("offsets and sizes past what a file can have: NFS3ERR_FBIG or an empty end of file, and the server keeps serving")
    func offsetsPastTheLargestFile() async throws {
        try await withServer(exports: { export, _ in "\(export) 127.0.0.1(rw,insecure,no_root_squash)\n" }) { server, _ in
            let c = try await client(server, from: "127.0.0.1", uid: 0, gid: 0)
            let root = try await c.mount(server.exportPath)
            let file = try #require(try await c.create(root, Array("big-offsets".utf8)).object)
            let data = ByteBuffer(bytes: [1, 2, 3, 4])
            let verifier = try await c.write(file, offset: 0, data: data, stable: .unstable).verifier
            for offset: UInt64 in [UInt64(Int64.max) - 1, 1 << 63, UInt64.max - 1] {
                for stable: NFS3StableHow in [.unstable, .fileSync] {
                    await fails("NFS3ERR_FBIG") { try await c.write(file, offset: offset, data: data, stable: stable) }
                }
                let read = try await c.read(file, offset: offset, count: 4096)
                #expect(read.data.readableBytes == 0 && read.eof, "READ at \(offset)")
            }
            for size: UInt64 in [1 << 63, UInt64.max] {
                await fails("NFS3ERR_FBIG") { try await c.setattr(file, NFS3SetAttributes(size: size)) }
            }
            // Still serving, the file as it was; nothing was lost, so the write verifier is the same.
            let after = try await c.write(file, offset: 0, data: data, stable: .fileSync)
            #expect(after.verifier == verifier, "a refused WRITE replaced the write verifier (every client sends its data again)")
            #expect(try await c.readAll(file) == [1, 2, 3, 4])
            await c.close()
        }
    }

    @Test("symlinks made by a client never lead outside the export")
    func symlinkEscapes() async throws {
        try await withServer(exports: { export, _ in "\(export) 127.0.0.1(rw,insecure,no_root_squash)\n" }) { server, _ in
            let c = try await client(server, from: "127.0.0.1", uid: 0, gid: 0)
            let root = try await c.mount(server.exportPath)
            let rootID = try await c.getattr(root).fileid
            for (name, target) in [("to-root", "/"), ("up", "../.."), ("etc", "/etc"), ("dotdot", "..")] {
                var args = ByteBuffer()
                args.writeNFS3SymlinkCall(NFS3SymlinkCall(where: NFS3DirOpArgs(directory: root, name: Array(name.utf8)),
                                                          attributes: NFS3SetAttributes(), target: Array(target.utf8)))
                #expect(try await c.status(of: .symlink, arguments: args) == .ok)
                let link = try await c.lookup(root, Array(name.utf8)).object
                #expect(try await c.getattr(link).type == .link)
                // Walking through the link is refused: the server never follows it.
                for child in ["passwd", "etc", ".."] {
                    var lookup = ByteBuffer()
                    lookup.writeNFS3LookupCall(NFS3LookupCall(what: NFS3DirOpArgs(directory: link, name: Array(child.utf8))))
                    let status = try await c.status(of: .lookup, arguments: lookup)
                    #expect(status == .notdir, "LOOKUP \(name)/\(child) gave \(status)")
                }
                await fails("NFS3ERR_NOTDIR") {
                    try await c.readdirplus(link, cookie: 0, verifier: .zero, dirCount: 4096, maxCount: 32768)
                }
                await fails("NFS3ERR_INVAL") { try await c.read(link, offset: 0, count: 100) }
            }
            // ".." of the export root is the root.
            #expect(try await c.lookup(root, [46, 46]).objectAttributes?.fileid == rootID)
            // Nothing listed at the root comes from outside.
            let page = try await c.readdirplus(root, cookie: 0, verifier: .zero, dirCount: 65536, maxCount: 262_144)
            let names = Set(page.entries.map { String(decoding: $0.name, as: UTF8.self) })
            #expect(names == [".", "..", "open", "secret", "to-root", "up", "etc", "dotdot"])
            await c.close()
        }
    }

    @Test("garbage, huge fragments and connection floods: the server keeps serving, within its limits")
    func hostileNetwork() async throws {
        try await withServer(exports: { export, _ in "\(export) 127.0.0.1(rw,insecure,no_root_squash)\n" }) { server, _ in
            let address = try SocketAddress(ipAddress: "127.0.0.1", port: server.nfsPort)
            var garbage = SplitMix(seed: 99)
            // Raw connections that send random bytes, truncated records and huge fragment headers.
            for i in 0..<300 {
                let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
                var sa = sockaddr_in()
                sa.sin_family = sa_family_t(AF_INET)
                sa.sin_port = UInt16(server.nfsPort).bigEndian
                sa.sin_addr.s_addr = inet_addr("127.0.0.1")
                _ = withUnsafePointer(to: &sa) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
                var bytes: [UInt8]
                switch i % 3 {
                case 0: bytes = (0..<Int(garbage.next(in: 1...4096))).map { _ in UInt8(truncatingIfNeeded: garbage.next()) }
                case 1: bytes = [0xff, 0xff, 0xff, 0xff] + [UInt8](repeating: 7, count: 100)  // a 2 GiB fragment
                default: bytes = [0x80, 0x00, 0x10, 0x00] + [UInt8](repeating: 0, count: 64)  // a record cut short
                }
                _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                // Keep every tenth connection open, idle, to the end of the flood.
                if i % 10 != 0 { close(fd) }
            }
            // Random datagrams.
            let udp = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
            var sa = sockaddr_in()
            sa.sin_family = sa_family_t(AF_INET)
            sa.sin_port = UInt16(server.nfsPort).bigEndian
            sa.sin_addr.s_addr = inet_addr("127.0.0.1")
            for _ in 0..<500 {
                let bytes = (0..<Int(garbage.next(in: 1...1400))).map { _ in UInt8(truncatingIfNeeded: garbage.next()) }
                _ = withUnsafePointer(to: &sa) { p in
                    p.withMemoryRebound(to: sockaddr.self, capacity: 1) { s in
                        bytes.withUnsafeBytes { sendto(udp, $0.baseAddress, $0.count, 0, s, socklen_t(MemoryLayout<sockaddr_in>.size)) }
                    }
                }
            }
            close(udp)
            // A well-behaved client is still served: at once, or, while the server is still
            // reaping the flood's closed connections (64 per client address count against it),
            // within a few seconds.
            var attempt = 0
            var connected: (NFS3Client, NFS3FileHandle)?
            while connected == nil {
                attempt += 1
                let c = try await NFS3Client.connect(to: address, credentials: .sys(AuthSysParameters(uid: 0, gid: 0)),
                                                     timeout: .seconds(10), group: group)
                do {
                    connected = (c, try await c.mount(server.exportPath))
                } catch {
                    await c.close()
                    guard attempt < 20 else { throw error }
                    try await Task.sleep(for: .milliseconds(500))
                }
            }
            let (c, root) = connected!
            try await c.null()
            #expect(try await c.getattr(root).type == .directory)
            await c.close()
            // And its memory stayed within bounds.
            let rss = server.residentKiB
            #expect(rss > 0 && rss < 512 * 1024, "server resident set \(rss) KiB")
        }
    }
}
