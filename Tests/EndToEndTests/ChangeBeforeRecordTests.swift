import Foundation
import NFS3
import NFS3Client
import NIOCore
import NIOPosix
import ONCRPC
import SwiftNFSTesting
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A server that dies after a namespace change reached the served tree and before its journal
/// record was written (`SWIFTNFS_DIE_BEFORE_RECORD`, the moment a crash leaves the tree ahead of
/// the journal). The restarted server must record the change before it serves, or the changes
/// acknowledged after it, recorded under the tree's paths, would not reach the durable copy:
/// after the served tree is lost they would be gone.
@Suite("A crash between a change and its journal record", .serialized)
struct ChangeBeforeRecordTests {
    enum Change: String, CaseIterable {
        case renameDirectory, create, remove, link
    }

    let data1 = [UInt8](repeating: 1, count: 3000)
    let data2 = [UInt8](repeating: 2, count: 5000)

    @Test("the change is journaled at restart and what was acknowledged after it survives a lost served tree",
          arguments: Change.allCases)
    func changeThenCrash(_ change: Change) async throws {
        let server = try ServerProcess(portmap: .none)
        defer { server.removeFiles() }
        let trigger = server.root.appendingPathComponent("die").path
        server.extraArguments = ["--durable-dir", server.root.appendingPathComponent("durable").path]
        server.environment = ["SWIFTNFS_DIE_BEFORE_RECORD": trigger]
        try await server.start()
        try await server.logged {
            try await exercise(change, server, trigger: trigger)
        }
        try await server.stop()
    }

    func exercise(_ change: Change, _ server: ServerProcess, trigger: String) async throws {
        var client = try await server.nfsClient(machine: "pending")
        var root = try await client.mount(server.exportPath)
        let d = try #require(try await client.mkdir(root, name("d")).object)
        let f = try #require(try await client.create(d, name("f")).object)
        _ = try await client.write(f, offset: 0, data: ByteBuffer(bytes: data1), stable: .fileSync)
        _ = try await client.create(d, name("g"))

        // The server dies in the middle of this call: no reply.
        _ = FileManager.default.createFile(atPath: trigger, contents: nil)
        await #expect(throws: (any Error).self, "the server was to die during \(change)") {
            switch change {
            case .renameDirectory: try await client.rename(root, name("d"), to: root, name("e"))
            case .create: _ = try await client.create(d, name("new"))
            case .remove: try await client.remove(d, name("g"))
            case .link: try await client.link(f, into: d, name("h"))
            }
        }
        try FileManager.default.removeItem(atPath: trigger)
        await client.close()
        #expect(try await !server.waitForExit(), "the server did not end at the failpoint")

        // Restarted with the served tree intact: the change is there, and more is acknowledged
        // on top of it, named by the paths the tree has now.
        try await server.start()
        client = try await server.nfsClient(machine: "pending")
        root = try await client.mount(server.exportPath)
        var expected: [String: [UInt8]?] = [:]
        switch change {
        case .renameDirectory:
            _ = try await client.write(f, offset: 0, data: ByteBuffer(bytes: data2), stable: .fileSync)
            expected = ["d": nil, "e/f": data2]
        case .create:
            let new = try await client.lookup(d, name("new")).object
            _ = try await client.write(new, offset: 0, data: ByteBuffer(bytes: data2), stable: .fileSync)
            expected = ["d/new": data2, "d/f": data1]
        case .remove:
            _ = try await client.write(f, offset: 0, data: ByteBuffer(bytes: data2), stable: .fileSync)
            expected = ["d/g": nil, "d/f": data2]
        case .link:
            // The file lives on under its new name only.
            try await client.remove(d, name("f"))
            _ = try await client.write(f, offset: 0, data: ByteBuffer(bytes: data2), stable: .fileSync)
            expected = ["d/f": nil, "d/h": data2]
        }
        try await check(expected, client, root, when: "after the restart")
        await client.close()

        // The instance store is lost: everything comes from the durable copy and the journal.
        try await server.kill()
        try server.wipeExport()
        try await server.start()
        client = try await server.nfsClient(machine: "pending")
        root = try await client.mount(server.exportPath)
        try await check(expected, client, root, when: "after the rebuild")
        // The handle from before still names the file.
        if change != .create {
            #expect(try await client.readAll(f) == data2, "the file's handle after the rebuild")
        }
        await client.close()
    }

    /// Each path holds the bytes given, or is absent (nil).
    func check(_ expected: [String: [UInt8]?], _ client: NFS3Client, _ root: NFS3FileHandle, when: String) async throws {
        for (path, content) in expected.sorted(by: { $0.key < $1.key }) {
            var handle: NFS3FileHandle? = root
            for component in path.split(separator: "/") {
                guard let dir = handle else { break }
                handle = try? await client.lookup(dir, Array(component.utf8)).object
            }
            if let content {
                let found = try #require(handle, "\(path) is missing \(when)")
                #expect(try await client.readAll(found) == content, "\(path) \(when)")
            } else {
                #expect(handle == nil, "\(path) is there \(when)")
            }
        }
    }

    func name(_ s: String) -> [UInt8] { Array(s.utf8) }

}
