import ArgumentParser
import Daemon
import HA

/// `serve --ha-*`: run the server as a node of a high-availability cluster (a preview: the
/// journal is replicated to the standby's durable directory, not yet into its served tree).
struct ServeHAOptions: ParsableArguments {
    @Option(name: .customLong("ha-etcd"), help: ArgumentHelp(
        "Run as a node of a high-availability cluster led through this etcd (client URLs, comma-separated). PREVIEW: a standby keeps the active's journal in its durable directory, but does not serve it yet after a takeover.",
        valueName: "URL[,URL...]"))
    var etcd: String?

    @Option(name: .customLong("ha-name"), help: ArgumentHelp("This node's name, unique in the cluster.", valueName: "NAME"))
    var name: String?

    @Option(name: .customLong("ha-address"), help: ArgumentHelp(
        "The service address clients mount, held by the active alone (added with a kernel lifetime no longer than its lease, announced by gratuitous ARP).",
        valueName: "IP/PREFIX"))
    var address: String?

    @Option(name: .customLong("ha-interface"), help: ArgumentHelp("The interface the service address goes on.", valueName: "IFACE"))
    var interface: String?

    @Option(name: .customLong("ha-ttl"), help: "Seconds of the leadership lease: an active that cannot renew it stops serving, and loses the address, within this time.")
    var ttl = 5

    @Option(name: .customLong("ha-cluster"), help: ArgumentHelp("The cluster's name: its keys are under /swiftnfs/NAME in etcd.", valueName: "NAME"))
    var cluster = "default"

    @Option(name: .customLong("ha-takeover-hook"), help: ArgumentHelp(
        "A command run through /bin/sh after each takeover and step-down, with SWIFTNFS_HA_ROLE (active|standby), SWIFTNFS_HA_ADDRESS, SWIFTNFS_HA_INTERFACE, SWIFTNFS_HA_NAME and SWIFTNFS_HA_EPOCH (deploy/ha/ec2-takeover-hook.sh moves an EC2 address). A failing hook is logged and shown in status; it does not stop the takeover.",
        valueName: "CMD"))
    var takeoverHook: String?

    @Option(name: .customLong("ha-hook-timeout"), help: "Seconds the takeover hook may run before it is killed.")
    var hookTimeout = 30

    @Option(name: .customLong("ha-replication-port"), help: ArgumentHelp(
        "The port standbys follow the journal of the durable directory on (TCP, on --listen). Default in a cluster with --durable-dir: 2050, the same on every node; a standby follows the service address at this port. Outside a cluster: none unless given.",
        valueName: "PORT"))
    var replicationPort: Int?

    @Option(name: .customLong("ha-replication-from"), help: ArgumentHelp(
        "Follow the journal of the active whose replication listener is here, into --durable-dir (instead of the service address at --ha-replication-port; also outside a cluster).",
        valueName: "HOST:PORT"))
    var replicationFrom: String?

    @Flag(name: .customLong("ha-replication-async"), help: "Do not wait for an in-sync standby before answering stable writes and COMMIT (by default they wait for it too, at most a second more, after which it is dropped until it catches up).")
    var replicationAsync = false

    /// The replication listener's port, if there is one.
    func replicationPort(durable: Bool) -> Int? {
        replicationPort ?? (isEnabled && durable ? Self.defaultReplicationPort : nil)
    }

    static let defaultReplicationPort = 2050

    var isEnabled: Bool { etcd != nil || name != nil || address != nil || interface != nil || takeoverHook != nil }

    func validate() throws {
        if let replicationPort, !(0...65535).contains(replicationPort) { throw ValidationError("--ha-replication-port must be 0...65535") }
        if let replicationFrom, Serve.hostAndPort(replicationFrom) == nil {
            throw ValidationError("--ha-replication-from needs HOST:PORT: \(replicationFrom)")
        }
        guard isEnabled else { return }
        guard etcd != nil, let name, let address, let interface else {
            throw ValidationError("a cluster node needs --ha-etcd, --ha-name, --ha-address and --ha-interface together")
        }
        guard !name.isEmpty, !name.contains("/") else { throw ValidationError("--ha-name must be a non-empty name without '/'") }
        guard !cluster.isEmpty, !cluster.contains("/") else { throw ValidationError("--ha-cluster must be a non-empty name without '/'") }
        guard ServiceAddress(address, interface: interface) != nil else {
            throw ValidationError("--ha-address needs IP/PREFIX (e.g. 10.0.0.100/24): \(address)")
        }
        // etcd grants no lease shorter than 1.5 election timeouts (2 s with its defaults).
        guard (2...3600).contains(ttl) else { throw ValidationError("--ha-ttl must be 2...3600 seconds") }
        guard (1...3600).contains(hookTimeout) else { throw ValidationError("--ha-hook-timeout must be 1...3600 seconds") }
        _ = try client()
    }

    func client() throws -> EtcdClient {
        do {
            return try EtcdClient(commaSeparated: etcd ?? "", timeout: .seconds(2))
        } catch let error as EtcdError {
            throw ValidationError("--ha-etcd: \(error.detail)")
        }
    }

    /// The node's configuration, or nil without `--ha-etcd`.
    func configuration() throws -> HighAvailabilityConfiguration? {
        guard isEnabled, let name, let address, let interface, let service = ServiceAddress(address, interface: interface) else {
            return nil
        }
        var ha = HighAvailabilityConfiguration(etcd: try client(), keys: ClusterKeys(cluster: cluster), name: name, address: service)
        ha.ttl = .seconds(ttl)
        ha.hook = takeoverHook.map { TakeoverHook(command: $0, timeout: .seconds(hookTimeout)) }
        return ha
    }
}
