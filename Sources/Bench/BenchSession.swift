import Mount
import NFS3
import NFS3Client
import NIOCore
import NIOPosix
import ONCRPC
import Portmap

/// What one `bench` invocation holds on the server: the mount, a control connection for
/// preparing and cleaning up, and its own run directory under `.swiftnfs-bench/` in the export
/// (removed at `close`; the cached 10,000-entry directory beside it stays).
package final class BenchSession: Sendable {
    /// The directory under the export root that holds every benchmark's files.
    package static let benchDirectoryName: [UInt8] = .name(".swiftnfs-bench")

    package let configuration: BenchConfiguration
    let group: EventLoopGroup
    let nfsAddress: SocketAddress
    let mountAddress: SocketAddress
    let credentials: RPCCredentials
    let control: NFS3Client
    package let root: NFS3FileHandle
    package let fsinfo: NFS3FsinfoOkay
    package let benchDirectory: NFS3FileHandle
    let runName: [UInt8]
    package let runDirectory: NFS3FileHandle
    let notes: @Sendable (String) -> Void

    private init(configuration: BenchConfiguration, group: EventLoopGroup, nfsAddress: SocketAddress,
                 mountAddress: SocketAddress, credentials: RPCCredentials, control: NFS3Client,
                 root: NFS3FileHandle, fsinfo: NFS3FsinfoOkay, benchDirectory: NFS3FileHandle, runName: [UInt8],
                 runDirectory: NFS3FileHandle, notes: @escaping @Sendable (String) -> Void) {
        self.configuration = configuration; self.group = group; self.nfsAddress = nfsAddress
        self.mountAddress = mountAddress; self.credentials = credentials; self.control = control
        self.root = root; self.fsinfo = fsinfo; self.benchDirectory = benchDirectory; self.runName = runName
        self.runDirectory = runDirectory; self.notes = notes
    }

    /// Finds the ports (from the portmapper unless given), mounts the export, and makes the run
    /// directory. `notes` receives what a person watching should know (preparation steps).
    static func lookup(_ program: UInt32, _ version: UInt32, _ c: BenchConfiguration, _ group: EventLoopGroup) async throws -> Int {
        do {
            return try await PortmapLookup.tcpPort(program: program, version: version, host: c.host, portmapPort: c.portmapPort, group: group)
        } catch {
            throw BenchError(.setup, "\(error)")
        }
    }

    package static func open(configuration c: BenchConfiguration, group: EventLoopGroup,
                            notes: @escaping @Sendable (String) -> Void) async throws -> BenchSession {
        let nfsPort: Int
        if let p = c.nfsPort {
            nfsPort = p
        } else {
            nfsPort = try await lookup(NFS3.program, NFS3.version, c, group)
        }
        let mountPort: Int
        if let p = c.mountPort {
            mountPort = p
        } else {
            mountPort = try await lookup(Mount.program, 3, c, group)
        }
        let nfsAddress = try SocketAddress.makeAddressResolvingHost(c.host, port: nfsPort)
        let mountAddress = try SocketAddress.makeAddressResolvingHost(c.host, port: mountPort)
        let credentials = RPCCredentials.sys(AuthSysParameters(machineName: "swiftnfs-bench", uid: c.uid, gid: c.gid))
        let timeout = TimeAmount.nanoseconds(Int64(c.timeout * 1e9))

        let mounter = try await NFS3Client.connect(to: mountAddress, credentials: credentials, timeout: timeout, group: group)
        let root: NFS3FileHandle
        do {
            root = try await mounter.mount(c.exportPath)
            await mounter.close()
        } catch {
            await mounter.close()
            throw error
        }
        let control = try await NFS3Client.connect(to: nfsAddress, credentials: credentials, timeout: timeout, group: group)
        do {
            let fsinfo = try await control.fsinfo(root)
            let bench = try await Self.directory(named: benchDirectoryName, in: root, client: control)
            let runName: [UInt8] = .name("run-" + String(UInt64.random(in: 1...UInt64.max), radix: 36))
            let run = try await Self.directory(named: runName, in: bench, client: control)
            return BenchSession(configuration: c, group: group, nfsAddress: nfsAddress, mountAddress: mountAddress,
                                credentials: credentials, control: control, root: root, fsinfo: fsinfo,
                                benchDirectory: bench, runName: runName, runDirectory: run, notes: notes)
        } catch {
            await control.close()
            throw error
        }
    }

    /// Removes the run directory, unmounts, and closes the control connection.
    package func close() async throws {
        var failure: Error?
        do { try await removeTree(runName, in: benchDirectory) } catch { failure = error }
        await control.close()
        if let mounter = try? await NFS3Client.connect(to: mountAddress, credentials: credentials,
                                                       timeout: .seconds(10), group: group) {
            try? await mounter.unmount(configuration.exportPath)
            await mounter.close()
        }
        if let failure { throw failure }
        notes("cleaned up")
    }

    /// A new connection to the NFS port, for one measured run.
    package func connect() async throws -> NFS3Client {
        try await NFS3Client.connect(to: nfsAddress, credentials: credentials, timeout: control.timeout, group: group)
    }

    func note(_ message: String) { notes(message) }

    // MARK: Preparation through NFS

    static func directory(named name: [UInt8], in parent: NFS3FileHandle, client: NFS3Client) async throws -> NFS3FileHandle {
        do {
            let found = try await client.lookup(parent, name)
            try ReplyCheck.attributes(found.objectAttributes, type: .directory, procedure: .lookup)
            return found.object
        } catch let e as NFS3ClientError where e.status == .noent {}
        do {
            let made = try await client.mkdir(parent, name)
            if let handle = made.object { return handle }
        } catch let e as NFS3ClientError where e.status == .exist {}
        return try await client.lookup(parent, name).object
    }

    /// The directory `name` in `parent`, made if it is not there.
    package func directory(named name: [UInt8], in parent: NFS3FileHandle) async throws -> NFS3FileHandle {
        try await Self.directory(named: name, in: parent, client: control)
    }

    /// Creates (or truncates) a regular file and returns its handle.
    package func createFile(in directory: NFS3FileHandle, named name: [UInt8],
                           using client: NFS3Client? = nil) async throws -> NFS3FileHandle {
        let client = client ?? control
        let created = try await client.create(directory, name, how: .unchecked(NFS3SetAttributes(mode: 0o644, size: 0)))
        if let handle = created.object { return handle }
        return try await client.lookup(directory, name).object
    }

    /// Writes a file's whole content (UNSTABLE, in wtmax-sized pieces, several at once), then COMMITs.
    package func fill(_ file: NFS3FileHandle, with content: PatternedFile) async throws {
        let piece = min(Int(fsinfo.wtmax), largeBlock)
        note("writing a \(content.size >> 20) MiB file")
        let offsets = Array(stride(from: 0, to: content.size, by: piece))
        let verifiers = try await concurrently(offsets, width: 8) { client, offset in
            let count = min(piece, content.size - offset)
            let reply = try await client.write(file, offset: UInt64(offset),
                                               data: content.slice(offset: UInt64(offset), count: count), stable: .unstable)
            try ReplyCheck.write(reply, count: count, stable: .unstable)
            return reply.verifier
        }
        let committed = try await control.commit(file, offset: 0, count: 0)
        for v in Set(verifiers) { try ReplyCheck.commit(committed, writeVerifier: v) }
    }

    /// Every entry of a directory.
    package func list(_ directory: NFS3FileHandle) async throws -> [NFS3ReaddirplusEntry] {
        var entries: [NFS3ReaddirplusEntry] = []
        try await forEachPage(of: directory, client: control) { entries.append($0) }
        return entries
    }

    /// Removes `name` in `parent`, with everything under it when it is a directory.
    package func removeTree(_ name: [UInt8], in parent: NFS3FileHandle, using client: NFS3Client? = nil) async throws {
        let client = client ?? control
        let found = try await client.lookup(parent, name)
        var type = found.objectAttributes?.type
        if type == nil { type = try await client.getattr(found.object).type }
        guard type == .directory else {
            try await client.remove(parent, name)
            return
        }
        var children: [[UInt8]] = []
        try await forEachPage(of: found.object, client: client) { entry in
            if !ListingCheck.isDotOrDotDot(entry.name) { children.append(entry.name) }
        }
        _ = try await concurrently(children) { client, child in
            try await self.removeTree(child, in: found.object, using: client)
        }
        try await client.rmdir(parent, name)
    }

    /// Runs `body` for each item on the control connection, `width` calls at a time; the results
    /// come back in the items' order.
    @discardableResult
    package func concurrently<T: Sendable, R: Sendable>(
        _ items: [T], width: Int = 16, _ body: @escaping @Sendable (NFS3Client, T) async throws -> R
    ) async throws -> [R] {
        var results = [R?](repeating: nil, count: items.count)
        let control = self.control
        try await withThrowingTaskGroup(of: (Int, R).self) { group in
            var next = 0
            func launch() {
                let i = next
                next += 1
                group.addTask { (i, try await body(control, items[i])) }
            }
            while next < min(width, items.count) { launch() }
            while let (i, r) = try await group.next() {
                results[i] = r
                if next < items.count { launch() }
            }
        }
        return results.map { $0! }
    }
}
