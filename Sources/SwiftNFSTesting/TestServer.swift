import Daemon
import HA
import FileStore
import Foundation
import Journal
import Logging
import NFS3
import NFS3Client
import NIOCore
import NIOPosix
import ONCRPC
import ServiceLifecycle

/// How `withTestServer` sets up its server.
package struct TestServerOptions: Sendable {
    /// A durable directory (journal and copy) beside the export.
    package var durable = false
    /// `--write-back-ms`; zero journals UNSTABLE data as it is written.
    package var writeBack: Duration = .seconds(2)
    package var checkpointInterval: Duration = .seconds(30)
    package var maxJournalBytes = 64 << 20
    /// The export's options (rw, no_root_squash, insecure, sync by default).
    package var exportOptions: ExportOptions = {
        var o = ExportOptions()
        (o.readOnly, o.rootSquash, o.secure) = (false, false, false)
        return o
    }()
    /// What the server's timed work goes by: a `ManualClock` lets the test move time.
    package var clock: any ServerClock = SystemClock()
    /// The directory holding the export, state and durable directories; given, it is kept
    /// afterwards, so a second `withTestServer` with it is the same server restarted.
    package var directory: String?
    /// An embedded portmapper (on a port the kernel picks).
    package var portmapper = false
    /// The lock grace period after a start with clients that held locks.
    package var lockGracePeriod: Duration = .seconds(2)
    /// The level the server logs at (to stderr); SWIFTNFS_TEST_LOG overrides it.
    package var logLevel: Logger.Level = .error
    /// Serve as a node of a cluster (the first mount then waits, up to 20 s, for the node to
    /// become the active).
    package var highAvailability: HighAvailabilityConfiguration?
    /// A replication listener for standbys (0: a port the kernel picks; see `replicationPort`).
    package var replicationPort: Int?
    /// Follow the journal of the active whose replication listener is there.
    package var replicationFrom: (host: String, port: Int)?

    package init() {}
}

/// A server running in this process on loopback, on ports the kernel picked, exporting a
/// fresh temporary directory (see `withTestServer`).
package struct TestServer: Sendable {
    /// The exported directory (also the path clients mount).
    package let exportPath: String
    package let stateDirectory: String
    /// The durable directory, with `TestServerOptions.durable`.
    package let durableDirectory: String?
    package let nfsPort: Int
    package let portmapPort: Int?
    /// The replication listener's port, with `TestServerOptions.replicationPort`.
    package let replicationPort: Int?

    /// A client over a new TCP connection, calling as `uid`/`gid` (AUTH_SYS).
    package func client(uid: UInt32 = 0, gid: UInt32 = 0, groups: [UInt32] = []) async throws -> NFS3Client {
        try await NFS3Client.connect(
            to: try SocketAddress(ipAddress: "127.0.0.1", port: nfsPort),
            credentials: .sys(AuthSysParameters(machineName: "test", uid: uid, gid: gid, groups: groups)),
            timeout: .seconds(30), group: MultiThreadedEventLoopGroup.singleton)
    }

    /// The path of `name` in the export, for looking at the served tree directly.
    package func path(_ name: String) -> String { exportPath + "/" + name }

    /// The changes in the journal (after its last checkpoint), oldest first; none without a
    /// durable directory.
    package func journalChanges() throws -> [FileChange] {
        guard let durableDirectory else { return [] }
        let directory = JournalDirectory(root: durableDirectory)
        var changes: [FileChange] = []
        try JournalLog.forEach(directory, after: directory.checkpointedSequence()) { record, _ in changes.append(record.change) }
        return changes
    }
}

/// Runs an NFS server in this process (the Hummingbird testing pattern): a temporary export
/// (and durable directory, if asked), ephemeral ports, then `body` with the server, a client
/// connected as root and the export's root handle. The server is stopped gracefully and its
/// directories removed afterwards, whether `body` returns or throws.
package func withTestServer<T>(_ options: TestServerOptions = TestServerOptions(),
                               _ body: (TestServer, NFS3Client, NFS3FileHandle) async throws -> T) async throws -> T {
    let root = options.directory
        ?? FileManager.default.temporaryDirectory.appendingPathComponent("swiftnfs-test-\(UUID().uuidString)").path
    defer { if options.directory == nil { try? FileManager.default.removeItem(atPath: root) } }
    let export = root + "/export", state = root + "/state"
    let durable = options.durable ? root + "/durable" : nil
    for dir in [export, state] + (durable.map { [$0] } ?? []) {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }
    var configuration = ServerConfiguration(exports: [ExportEntryConfig(path: export, clients: [(.everyone, options.exportOptions)])])
    configuration.listenAddress = "127.0.0.1"
    (configuration.nfsPort, configuration.portmapPort) = (0, options.portmapper ? 0 : nil)
    configuration.lockGracePeriod = options.lockGracePeriod
    configuration.stateDirectory = state
    configuration.durableDirectory = durable
    configuration.writeBackDelay = options.writeBack
    configuration.checkpointInterval = options.checkpointInterval
    configuration.maxJournalBytes = options.maxJournalBytes
    configuration.clock = options.clock
    configuration.highAvailability = options.highAvailability
    configuration.replicationPort = options.replicationPort
    configuration.replicationFrom = options.replicationFrom
    var logger = Logger(label: "swiftnfsd-test")
    logger.logLevel = ProcessInfo.processInfo.environment["SWIFTNFS_TEST_LOG"].flatMap(Logger.Level.init(rawValue:)) ?? options.logLevel

    let server = NFSServer(configuration: configuration, logger: logger)
    let group = ServiceGroup(services: [server], logger: logger)
    let running = Task { try await group.run() }
    var ready = server.ready.makeAsyncIterator()
    guard let bound = await ready.next() else {
        // It could not start: its error says why.
        try await running.value
        throw TestServerError(description: "the server stopped before it served")
    }
    let testServer = TestServer(exportPath: export, stateDirectory: state, durableDirectory: durable,
                                nfsPort: bound.nfsPort, portmapPort: bound.portmapPort, replicationPort: bound.replicationPort)
    func stop() async throws {
        await group.triggerGracefulShutdown()
        try await running.value
    }
    let client: NFS3Client
    let result: T
    do {
        client = try await testServer.client()
        let rootHandle: NFS3FileHandle
        if options.highAvailability != nil {
            rootHandle = try await mountWhenActive(client, export)
        } else {
            rootHandle = try await client.mount(export)
        }
        result = try await body(testServer, client, rootHandle)
    } catch {
        try? await stop()
        throw error
    }
    await client.close()
    try await stop()
    return result
}

/// A cluster node answers once it is the active: the mount is tried until then.
private func mountWhenActive(_ client: NFS3Client, _ export: String) async throws -> NFS3FileHandle {
    let deadline = ContinuousClock.now + .seconds(20)
    while true {
        do {
            return try await client.mount(export)
        } catch {
            guard ContinuousClock.now < deadline else { throw error }
            try await Task.sleep(for: .milliseconds(50))
        }
    }
}

package struct TestServerError: Error, CustomStringConvertible {
    package var description: String
}
