import Daemon
import Foundation
import NFS3Server
import NIOCore
import ONCRPC
import Testing

@Suite struct ExportsParserTests {
    static func corpus(_ kind: String) -> [URL] {
        let dir = Bundle.module.url(forResource: "Corpus", withExtension: nil)!.appendingPathComponent(kind)
        return (try? FileManager.default.contentsOfDirectory(at: dir, includingPropertiesForKeys: nil))?
            .filter { $0.pathExtension == "exports" }.sorted { $0.path < $1.path } ?? []
    }

    @Test func corpusIsPresent() {
        #expect(Self.corpus("good").count >= 3)
        #expect(Self.corpus("bad").count >= 7)
    }

    @Test(arguments: corpus("good"))
    func goodFilesParse(file: URL) throws {
        let entries = try ExportsParser.load(path: file.path)
        #expect(!entries.isEmpty)
        for e in entries { #expect(e.path.hasPrefix("/")) }
    }

    @Test(arguments: corpus("bad"))
    func badFilesAreRefusedWithFileAndLine(file: URL) throws {
        do {
            _ = try ExportsParser.load(path: file.path)
            Issue.record("\(file.lastPathComponent) was accepted")
        } catch {
            #expect(error.file == file.path)
            #expect(error.line >= 1)
            #expect(error.description.hasPrefix("\(file.path):\(error.line): "))
        }
    }

    @Test func unknownOptionNamesTheOption() throws {
        #expect(throws: ExportsError(file: "t", line: 2, reason: .unknownOption("no_subtre_check"))) {
            try ExportsParser.parse("# comment\n/srv *(rw,no_subtre_check)\n", file: "t")
        }
    }

    @Test func durableDirectoryPerExport() throws {
        let entries = try ExportsParser.parse("""
            /srv/a -rw,durable=/mnt/ebs/a 10.0.0.0/8 192.168.1.1(ro)
            /srv/b *(rw)
            """, file: "t")
        #expect(entries.map(\.durableDirectory) == ["/mnt/ebs/a", nil])
    }

    @Test func knfsdDefaultsApplyWhenAbsent() throws {
        let e = try #require(try ExportsParser.parse("/srv 10.0.0.1\n", file: "t").first)
        let o = try #require(e.clients.first?.1)
        #expect(o.readOnly && o.sync && o.secure && o.rootSquash && !o.allSquash)
        #expect(o.anonUID == 65534 && o.anonGID == 65534)
    }

    @Test func defaultsLineOptionsAndContinuations() throws {
        let entries = try ExportsParser.parse("""
            /a -rw,insecure 10.0.0.0/8 \\
               192.168.0.0/255.255.0.0(ro)
            "/b c" *(all_squash,anonuid=150,anongid=100)
            """, file: "t")
        #expect(entries.map(\.path) == ["/a", "/b c"])
        let a = entries[0].clients
        #expect(a.count == 2)
        #expect(!a[0].1.readOnly && !a[0].1.secure)
        #expect(a[1].1.readOnly && !a[1].1.secure)
        #expect(a[1].0 == .network([192, 168, 0, 0], prefix: 16))
        let b = try #require(entries[1].clients.first?.1)
        #expect(b.allSquash && b.anonUID == 150 && b.anonGID == 100)
    }

    @Test func clientMatching() throws {
        let entries = try ExportsParser.parse("/x 10.1.0.0/16(rw) 127.0.0.1(ro) localhost(rw) *.nowhere.invalid(rw)\n", file: "t")
        let e = try #require(entries.first)
        #expect(e.options(address: [10, 1, 200, 3], hostname: nil)?.readOnly == false)
        #expect(e.options(address: [10, 2, 0, 1], hostname: nil) == nil)
        // First match wins: 127.0.0.1 is ro even though localhost (rw) matches too.
        #expect(e.options(address: [127, 0, 0, 1], hostname: nil)?.readOnly == true)
        // An IPv4-mapped IPv6 address matches its IPv4 specification.
        #expect(e.options(address: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 1, 0, 9], hostname: nil) != nil)
        #expect(e.options(address: [192, 0, 2, 1], hostname: "a.nowhere.invalid")?.readOnly == false)
        #expect(e.options(address: [192, 0, 2, 1], hostname: "a.elsewhere.invalid") == nil)
    }

    @Test func hostNamesResolveAtLoadTime() throws {
        let e = try #require(try ExportsParser.parse("/x localhost(rw)\n", file: "t").first)
        guard case .host(let name, let addresses) = e.clients[0].0 else {
            Issue.record("localhost should be a resolved host")
            return
        }
        #expect(name == "localhost")
        #expect(addresses.contains([127, 0, 0, 1]))
        #expect(e.options(address: [127, 0, 0, 1], hostname: nil) != nil)
    }

    @Test func squashingMapsIdentities() {
        let rootCaller = RPCCredentials.sys(AuthSysParameters(uid: 0, gid: 0, groups: [0, 5]))
        let user = RPCCredentials.sys(AuthSysParameters(uid: 1000, gid: 100, groups: [20]))
        let squash = ClientAccess(readOnly: false, requirePrivilegedPort: true, rootSquash: true, allSquash: false,
                                  anonUID: 65534, anonGID: 65533)
        #expect(squash.identity(for: rootCaller) == .init(uid: 65534, gid: 65533, groups: [65533, 5]))
        #expect(squash.identity(for: user) == .init(uid: 1000, gid: 100, groups: [20]))
        #expect(squash.identity(for: .none) == .init(uid: 65534, gid: 65533, groups: []))
        var all = squash
        all.allSquash = true
        #expect(all.identity(for: user) == .init(uid: 65534, gid: 65533, groups: []))
        var none = squash
        none.rootSquash = false
        #expect(none.identity(for: rootCaller) == .init(uid: 0, gid: 0, groups: [0, 5]))
    }

    @Test func securePortCheck() throws {
        let secure = ClientAccess(readOnly: true, requirePrivilegedPort: true, rootSquash: true, allSquash: false)
        #expect(secure.portAllowed(try SocketAddress(ipAddress: "10.0.0.1", port: 1023)))
        #expect(!secure.portAllowed(try SocketAddress(ipAddress: "10.0.0.1", port: 1024)))
        var insecure = secure
        insecure.requirePrivilegedPort = false
        #expect(insecure.portAllowed(try SocketAddress(ipAddress: "10.0.0.1", port: 40000)))
    }
}
