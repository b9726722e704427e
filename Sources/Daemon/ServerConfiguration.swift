import FileStore
import HA
import NIOCore

/// Everything `swiftnfsd serve` needs to know.
package struct ServerConfiguration: Sendable {
    /// Exports given directly (kept across reloads).
    package var exports: [ExportEntryConfig]
    /// An exports file, re-read on SIGHUP.
    package var exportsFile: String?
    /// The address to listen on; "0.0.0.0" for all IPv4 addresses, "::" for all addresses.
    package var listenAddress = "0.0.0.0"
    /// NFS and MOUNT, TCP and UDP.
    package var nfsPort = 2049
    /// The embedded portmapper (TCP and UDP); 0 for a port the kernel picks, nil for none.
    package var portmapPort: Int? = 111
    /// rpcbind's local socket, where local programs (rpc.statd, the kernel's lockd) register;
    /// the embedded portmapper serves it too. nil for none.
    package var rpcbindSocket: String?
    /// Register with a system rpcbind on 127.0.0.1:111 instead of embedding one.
    package var registerWithSystemRpcbind = false
    /// Where the server keeps what must survive a restart (file identity indexes).
    package var stateDirectory = "/var/lib/swiftnfs"
    /// Threads for blocking file-system calls.
    package var threads = Self.defaultThreads
    /// Blocking calls mostly wait on the disk (writes, syncs, namespace changes), so there are
    /// several threads per core to keep the device busy: 8 per core, at least 16.
    package static var defaultThreads: Int { max(16, 8 * System.coreCount) }
    /// The durable directory (an EBS volume) for the write-back journal and the checkpointed
    /// copy; nil for none (the served directory is then the only copy).
    package var durableDirectory: String?
    /// How soon records in the journal reach its stable storage.
    package var journalFlushInterval: Duration = .milliseconds(500)
    /// How long UNSTABLE data may wait in the served file for its COMMIT before it is copied
    /// into the journal anyway (zero: copied as it is written). See `WriteBackSettings`.
    package var writeBackDelay: Duration = .seconds(2)
    /// How often the durable copy is brought up to date.
    package var checkpointInterval: Duration = .seconds(30)
    /// Where `/metrics` is served (Prometheus text format); nil for nowhere.
    package var metricsListen: (host: String, port: Int)?
    /// What the server's timed work goes by (tests move a clock of their own).
    package var clock: any ServerClock = SystemClock()
    /// After a start with clients that held locks, how long only their reclaims are granted.
    package var lockGracePeriod: Duration = .seconds(15)
    /// Appends wait (slower acknowledgements) while the journal holds more than this.
    package var maxJournalBytes = 1 << 30

    /// Run as a node of a high-availability cluster (`--ha-*`); nil for a server on its own.
    package var highAvailability: HighAvailabilityConfiguration?
    /// The replication listener of the default durable directory's journal
    /// (`--ha-replication-port`; 0: a port the kernel picks): standbys follow it. Nil: none. A
    /// cluster node refuses followers while it is not the active.
    package var replicationPort: Int?
    /// Where the active's replication listener is (`--ha-replication-from HOST:PORT`): this server
    /// follows its journal into the default durable directory. A cluster node follows the
    /// service address at its own replication port by default, while it is not the active.
    package var replicationFrom: (host: String, port: Int)?
    /// While a standby is in sync, answer stable writes and COMMIT only once it has their
    /// records too (at most a second more); `--ha-replication-async` turns it off.
    package var synchronousReplication = true

    package init(exports: [ExportEntryConfig]) {
        self.exports = exports
    }
}

/// A node of a high-availability cluster: the election in etcd, the service address it holds
/// while it is the active, and the takeover hook.
package struct HighAvailabilityConfiguration: Sendable {
    package var etcd: EtcdClient
    package var keys: ClusterKeys
    package var name: String
    package var address: ServiceAddress
    /// The leadership lease: an active that cannot renew it stops serving within this time.
    package var ttl: Duration = .seconds(5)
    /// The longest one etcd call may take.
    package var etcdTimeout: Duration = .seconds(2)
    package var hook: TakeoverHook?
    /// What puts the address on and off this node (a fake in tests).
    package var mover: any AddressMover = LinuxAddressMover()

    package init(etcd: EtcdClient, keys: ClusterKeys, name: String, address: ServiceAddress) {
        self.etcd = etcd
        self.keys = keys
        self.name = name
        self.address = address
    }
}
