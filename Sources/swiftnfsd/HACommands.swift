import ArgumentParser
import FileStore
import Foundation
import HA
import Logging
import ServiceLifecycle

/// `swiftnfsd ha ...`: the cluster's leadership in etcd. A node serves with `serve --ha-*`;
/// `campaign` runs a node's election alone; `probe` checks the service address as a client;
/// `allow-takeover` lets a node the sync record does not name take over, losing what it lacks.
struct HACommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ha", abstract: "High availability through etcd (a preview: no replication yet).",
        subcommands: [HAStatus.self, HASwitchover.self, HACampaign.self, HAProbe.self, HAAllowTakeover.self])
}

/// Exit status when etcd cannot be reached at any endpoint.
let etcdUnreachableExitCode: Int32 = 3

struct HAClusterOptions: ParsableArguments {
    @Option(name: .customLong("ha-etcd"), help: ArgumentHelp(
        "etcd client URLs, comma-separated; when one fails the next is tried.", valueName: "URL[,URL...]"))
    var etcd: String

    @Option(name: .customLong("ha-cluster"), help: ArgumentHelp(
        "The cluster's name: its keys are under /swiftnfs/NAME in etcd.", valueName: "NAME"))
    var cluster = "default"

    @Option(help: "Seconds an etcd request may take, all endpoints together.")
    var timeout: Double = 5

    func validate() throws {
        guard !cluster.isEmpty, !cluster.contains("/") else { throw ValidationError("--ha-cluster must be a non-empty name without '/'") }
        guard timeout > 0 else { throw ValidationError("--timeout must be positive") }
        _ = try client()
    }

    func client() throws -> EtcdClient {
        do {
            return try EtcdClient(commaSeparated: etcd, timeout: .milliseconds(Int(timeout * 1000)))
        } catch let error as EtcdError {
            throw ValidationError("--ha-etcd: \(error.detail)")
        }
    }

    var keys: ClusterKeys { ClusterKeys(cluster: cluster) }
}

/// Runs `body`; an etcd that cannot be reached ends the command with a clear line and exit status 3.
func withEtcd<T>(_ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch let error as EtcdError {
        FileHandle.standardError.write(Data("swiftnfsd: \(error)\n".utf8))
        throw ExitCode(error.code == .unreachable ? etcdUnreachableExitCode : 1)
    }
}

struct HAStatus: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Print the cluster as JSON: {\"active\": NAME|null, \"epoch\": N, \"members\": [{\"name\", \"role\", \"in_sync\", \"lag_bytes\", \"not_eligible\"}], \"sync\": {\"leader\", \"standby\"}|null}.",
        discussion: "role is active (holds the leader key), standby (alive, not leading) or down (joined once, no live lease). sync is the sync record: the last active and the standby that holds everything it acknowledged; not_eligible (only on a node that may not take over) says why. Exit status 3 when etcd cannot be reached.")

    @OptionGroup var cluster: HAClusterOptions

    func run() async throws {
        let client = try cluster.client()
        let view = try await withEtcd { try await ClusterView.read(from: client, keys: cluster.keys) }
        print(view.status.json)
    }
}

struct HASwitchover: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "switchover",
        abstract: "Hand the active role to a live standby and wait until it is active.",
        discussion: "Asks for the switchover under a lease of this command's own (so the request ends with it), then waits. Prints the cluster's status as JSON on success; exit status 1 if NAME is not active in time, 3 when etcd cannot be reached.")

    @OptionGroup var cluster: HAClusterOptions

    @Option(help: ArgumentHelp("The node to make active.", valueName: "NAME"))
    var to: String

    @Option(help: "Seconds to wait for NAME to become active.")
    var wait: Double = 10

    func run() async throws {
        let client = try cluster.client()
        let keys = cluster.keys
        let start = ContinuousClock.now
        let view = try await withEtcd { try await ClusterView.read(from: client, keys: keys) }
        guard view.members[to] != nil else {
            let live = view.members.keys.sorted().joined(separator: ", ")
            throw ValidationError("no live node named \(to) in cluster \(cluster.cluster) (live: \(live.isEmpty ? "none" : live))")
        }
        // The active hands over only to a node that may take over: the sync standby.
        if view.leader?.name != to, let refusal = view.takeoverRefusal(of: to) {
            throw ValidationError("\(to) cannot take over: \(refusal)")
        }
        if view.leader?.name != to {
            let lease = try await withEtcd { try await client.grantLease(ttl: .milliseconds(Int(wait * 1000)) + .seconds(5)) }
            // Revoked on the way out; if this command dies first, the request ends with the lease.
            _ = try await withEtcd { try await client.put(keys.switchover, SwitchoverRecord(to: to).jsonData(), lease: lease.id) }
            let deadline = start + .milliseconds(Int(wait * 1000))
            var current = view
            while current.leader?.name != to {
                guard ContinuousClock.now < deadline else {
                    try? await client.revoke(lease: lease.id)
                    FileHandle.standardError.write(Data(
                        "swiftnfsd: \(to) did not become active within \(wait) s (active: \(current.leader?.name ?? "none"))\n".utf8))
                    throw ExitCode.failure
                }
                try await Task.sleep(for: .milliseconds(50))
                current = (try? await ClusterView.read(from: client, keys: keys)) ?? current
            }
            try? await client.revoke(lease: lease.id)
        }
        let done = try await withEtcd { try await ClusterView.read(from: client, keys: keys) }
        FileHandle.standardError.write(Data("swiftnfsd: \(to) is active (\(ContinuousClock.now - start))\n".utf8))
        print(done.status.json)
    }
}

struct HAAllowTakeover: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "allow-takeover",
        abstract: "Let a node the sync record does not name take over while no node is active, ACCEPTING THE LOSS of the writes the last active acknowledged and it lacks.",
        discussion: "Names NAME the sync standby in the sync record, in one transaction that holds only if no node is active and the record is still as read; NAME then campaigns by itself. Prints the cluster's status as JSON; exit status 1 when a node is active or the record changed meanwhile, 3 when etcd cannot be reached.")

    @OptionGroup var cluster: HAClusterOptions

    @Option(help: ArgumentHelp("The node to let take over.", valueName: "NAME"))
    var to: String

    func run() async throws {
        let client = try cluster.client()
        let keys = cluster.keys
        let view = try await withEtcd { try await ClusterView.read(from: client, keys: keys) }
        guard view.leader == nil else {
            FileHandle.standardError.write(Data("swiftnfsd: \(view.leader?.name ?? "") is active; nothing to allow\n".utf8))
            throw ExitCode.failure
        }
        let record = SyncRecord(leader: view.sync?.record.leader ?? to, standby: to)
        let (leader, sync) = (Data(keys.leader.utf8), Data(keys.sync.utf8))
        let txn = TxnRequest(compare: [.created(leader, at: 0), .modified(sync, at: view.sync?.revision ?? 0)],
                             success: [.put(PutRequest(key: sync, value: record.jsonData()))])
        guard try await withEtcd({ try await client.txn(txn) }).succeeded == true else {
            FileHandle.standardError.write(Data("swiftnfsd: a node became active or the sync record changed meanwhile; nothing written\n".utf8))
            throw ExitCode.failure
        }
        FileHandle.standardError.write(Data("swiftnfsd: \(to) may take over (writes \(record.leader) acknowledged and \(to) lacks are lost)\n".utf8))
        print(try await withEtcd { try await ClusterView.read(from: client, keys: keys) }.status.json)
    }
}

struct HACampaign: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "campaign",
        abstract: "Take part in the election as a node, and print each role change as a line of JSON (a building block: it serves nothing).",
        discussion: """
            Lines: {"node", "event": "active"|"standby"|"fenced"|"resigned", "epoch", "leader", "reason", "monotonic_ns", "active_until_ns"}. \
            An active that cannot prove its lease within the TTL (etcd unreachable, the process stopped) prints "fenced" before anything else. \
            SIGTERM or SIGINT: an active resigns, then the command exits.
            """)

    @OptionGroup var cluster: HAClusterOptions

    @Option(name: .customLong("ha-name"), help: ArgumentHelp("This node's name, unique in the cluster.", valueName: "NAME"))
    var name: String

    @Option(name: .customLong("ha-address"), help: ArgumentHelp("The address this node serves on, published for the others.", valueName: "ADDRESS"))
    var address = ""

    @Option(name: .customLong("ha-ttl"), help: "Seconds of the leadership lease: an active that cannot renew it fences itself within this time.")
    var ttl = 5

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "notice"

    func validate() throws {
        guard !name.isEmpty, !name.contains("/") else { throw ValidationError("--ha-name must be a non-empty name without '/'") }
        // etcd grants no lease shorter than 1.5 election timeouts (2 s with its defaults).
        guard (2...3600).contains(ttl) else { throw ValidationError("--ha-ttl must be 2...3600 seconds") }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("unknown --log-level \(logLevel)") }
    }

    func run() async throws {
        var logger = Logger(label: "swiftnfsd") { StreamLogHandler.standardError(label: $0) }
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .notice
        let client = try cluster.client()
        // Fail at once, with the usual message, when etcd is not there at all.
        _ = try await withEtcd { try await client.get(cluster.keys.leader) }
        var configuration = LeaderElection.Configuration(keys: cluster.keys, name: name, address: address,
                                                         ttl: .seconds(ttl))
        configuration.callTimeout = .milliseconds(Int(cluster.timeout * 1000))
        let clock = SystemClock()
        let election = LeaderElection(configuration: configuration, client: client, clock: clock, logger: logger)
        let printer = RolePrinter(node: name, changes: election.roleChanges, clock: clock)
        let group = ServiceGroup(configuration: .init(
            // The election stops first (services stop in reverse order) and ends the stream, which
            // the printer drains before it returns.
            services: [.init(service: printer), .init(service: election, successTerminationBehavior: .gracefullyShutdownGroup)],
            gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}

/// Prints each role change as a line of JSON, flushed at once.
struct RolePrinter: Service {
    let node: String
    let changes: AsyncStream<RoleChange>
    let clock: any ServerClock

    func run() async throws {
        for await change in changes {
            let line = RoleEvent(node: node, change: change, now: clock.now).jsonData() + Data("\n".utf8)
            FileHandle.standardOutput.write(line)
        }
    }
}
