import ArgumentParser
import Daemon
import HA

/// `serve --ha-*`: run the server as a node of a high-availability cluster (a preview: no
/// replication yet, so a standby does not have the active's data).
struct ServeHAOptions: ParsableArguments {
    @Option(name: .customLong("ha-etcd"), help: ArgumentHelp(
        "Run as a node of a high-availability cluster led through this etcd (client URLs, comma-separated). PREVIEW: a standby does not yet have the active's data (no replication).",
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

    var isEnabled: Bool { etcd != nil || name != nil || address != nil || interface != nil || takeoverHook != nil }

    func validate() throws {
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
