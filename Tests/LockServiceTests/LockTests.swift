import NFS3
import NFS3Client
import NIOCore
import NLM
import SwiftNFSTesting
import Testing

/// NLM TEST, LOCK, UNLOCK over the wire: POSIX byte-range locks between clients.
@Suite struct LockTests {
    @Test("an exclusive lock keeps another client out until it is released; TEST names the holder",
          arguments: [UInt32(1), 3, 4])
    func conflictsAcrossClients(version: UInt32) async throws {
        try await withTestServer { server, client, root in
            let file = try await makeFile(client, root)
            let a = try await LockingHost.connect("host-a", to: server, version: version)
            let b = try await LockingHost.connect("host-b", to: server, version: version, transport: .udp)
            #expect(try await a.nlm.lock(a.lock(file, 10, 90, svid: 7), exclusive: true) == .granted)
            let (status, holder) = try await b.nlm.test(b.lock(file, 50, 1), exclusive: false)
            #expect(status == .denied)
            #expect(holder == NLMHolder(exclusive: true, svid: 7, ownerHandle: Array("7@host-a".utf8), offset: 10, length: 90))
            #expect(try await b.nlm.lock(b.lock(file, 0, 11), exclusive: false) == .denied)
            // Not overlapping: no conflict.
            #expect(try await b.nlm.lock(b.lock(file, 100, 5), exclusive: true) == .granted)
            #expect(try await a.nlm.unlock(a.lock(file, 10, 90, svid: 7)) == .granted)
            #expect(try await b.nlm.lock(b.lock(file, 0, 11), exclusive: false) == .granted)
            await a.nlm.close()
            await b.nlm.close()
        }
    }

    @Test("shared locks coexist; a length of 0 reaches the end of the file; unlocking the middle splits a lock")
    func rangesAndKinds() async throws {
        try await withTestServer { server, client, root in
            let (file, a, b) = try await fileAndTwoHosts(server, client, root)
            #expect(try await a.nlm.lock(a.lock(file, 0, 0), exclusive: false) == .granted)
            #expect(try await b.nlm.lock(b.lock(file, 1 << 40, 1), exclusive: false) == .granted)
            #expect(try await b.nlm.test(b.lock(file, 1 << 50, 1), exclusive: true).0 == .denied)
            #expect(try await b.nlm.unlock(b.lock(file, 1 << 40, 1)) == .granted)
            // a upgrades its lock to exclusive (no one else holds any), then gives back [100, 200).
            #expect(try await a.nlm.lock(a.lock(file, 0, 0), exclusive: true) == .granted)
            #expect(try await a.nlm.unlock(a.lock(file, 100, 100)) == .granted)
            #expect(try await b.nlm.lock(b.lock(file, 100, 100), exclusive: true) == .granted)
            #expect(try await b.nlm.test(b.lock(file, 99, 1), exclusive: false).0 == .denied)
            #expect(try await b.nlm.test(b.lock(file, 200, 1), exclusive: false).0 == .denied)
            // Two processes of one host are two owners.
            #expect(try await b.nlm.lock(b.lock(file, 150, 1, svid: 2), exclusive: false) == .denied)
        }
    }

    @Test("locks belong to the file, not its name: they hold across a rename and through a hard link")
    func locksFollowTheFile() async throws {
        try await withTestServer { server, client, root in
            let file = try await makeFile(client, root, "before")
            let a = try await LockingHost.connect("host-a", to: server)
            let b = try await LockingHost.connect("host-b", to: server)
            #expect(try await a.nlm.lock(a.lock(file), exclusive: true) == .granted)
            try await client.rename(root, Array("before".utf8), to: root, Array("after".utf8))
            try await client.link(file, into: root, Array("link".utf8))
            for name in ["after", "link"] {
                let found = try await client.lookup(root, Array(name.utf8)).object
                #expect(try await b.nlm.lock(b.lock(found), exclusive: false) == .denied, "\(name)")
            }
        }
    }

    @Test("a handle the server does not know is answered as stale (version 4) or with no locks (1 and 3)")
    func unknownHandle() async throws {
        try await withTestServer { server, client, root in
            let file = try await makeFile(client, root)
            try await client.remove(root, Array("locked".utf8))
            for (version, expected) in [(UInt32(4), NLM.Status.staleFileHandle), (3, .deniedNoLocks)] {
                let a = try await LockingHost.connect("host-a", to: server, version: version)
                #expect(try await a.nlm.lock(a.lock(file), exclusive: true) == expected)
                #expect(try await a.nlm.lock(a.lock(NFS3FileHandle(Array(repeating: 7, count: 40))), exclusive: true) == expected)
                await a.nlm.close()
            }
        }
    }

    @Test("FREE_ALL drops every lock of the host that names itself")
    func freeAll() async throws {
        try await withTestServer { server, client, root in
            let (file, a, b) = try await fileAndTwoHosts(server, client, root)
            #expect(try await a.nlm.lock(a.lock(file, 0, 10), exclusive: true) == .granted)
            #expect(try await a.nlm.lock(a.lock(file, 20, 10, svid: 3), exclusive: true) == .granted)
            try await b.nlm.freeAll(name: "host-b", state: 3)  // someone else's: nothing changes
            #expect(try await b.nlm.test(b.lock(file, 0, 0), exclusive: false).0 == .denied)
            try await a.nlm.freeAll(name: "host-a", state: 3)
            #expect(try await b.nlm.lock(b.lock(file, 0, 0), exclusive: true) == .granted)
        }
    }

    @Test("SHARE reservations conflict on what each opener does and denies")
    func shares() async throws {
        try await withTestServer { server, client, root in
            let file = try await makeFile(client, root)
            let a = try await LockingHost.connect("host-a", to: server, version: 3)
            let b = try await LockingHost.connect("host-b", to: server, version: 3)
            func share(_ host: LockingHost, deny: UInt32, access: UInt32) -> NLMShareArguments {
                NLMShareArguments(cookie: [1], callerName: host.name, fileHandle: file.bytes, ownerHandle: Array(host.name.utf8),
                                  denyMode: deny, access: access)
            }
            #expect(try await a.nlm.share(share(a, deny: 2, access: 1)) == .granted)
            #expect(try await b.nlm.share(share(b, deny: 0, access: 2)) == .denied)
            #expect(try await b.nlm.share(share(b, deny: 0, access: 1)) == .granted)
            #expect(try await a.nlm.share(share(a, deny: 2, access: 1), take: false) == .granted)
            #expect(try await b.nlm.share(share(b, deny: 0, access: 3)) == .granted)
        }
    }
}
