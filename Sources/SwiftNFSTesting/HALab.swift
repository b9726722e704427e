import Foundation
import HA

#if canImport(Glibc)
import Glibc
#endif

/// A two-node cluster in network namespaces, for the HA lab tests:
///
///     root namespace:  bridge snfslab0, 10.231.7.1/24, etcd listening there
///     snfslab-a:       node a, lab0 = 10.231.7.11/24   } `swiftnfsd serve --ha-*`, each with its own
///     snfslab-b:       node b, lab0 = 10.231.7.12/24   } export, state and durable directories
///     snfslab-c:       the client, lab0 = 10.231.7.50/24
///     service address: 10.231.7.100/24, on lab0 of whichever node is the active
///
/// Each namespace reaches the bridge through a veth pair. Every node exports the same path
/// (`exportPath`): in its own mount namespace (`ip netns exec` makes one) its own directory is
/// bind-mounted there, and a tmpfs on /run/swiftnfs keeps its crash markers apart from the
/// other's. `HALab.with` removes whatever an earlier run left, builds it all, and tears it
/// down whatever happens.
package final class HALab: @unchecked Sendable {
    package static let bridge = "snfslab0"
    package static let bridgeAddress = "10.231.7.1"
    package static let serviceIP = "10.231.7.100"
    package static let service = serviceIP + "/24"
    package static let interface = "lab0"
    package static let client = "snfslab-c"
    static let nodeAddresses = ["a": "10.231.7.11", "b": "10.231.7.12"]
    static let namespaces = ["snfslab-a", "snfslab-b", client]

    package static func namespace(_ node: String) -> String { "snfslab-" + node }

    /// Why the lab cannot run here (not root, no network namespaces, no `ip`), or nil.
    package static var unavailable: String? {
        guard getuid() == 0 else { return "the HA lab needs root (network namespaces, addresses)" }
        guard (try? Tools.path(of: "ip")) != nil else { return "the HA lab needs ip (Debian package iproute2)" }
        guard FileManager.default.fileExists(atPath: "/proc/self/ns/net") else { return "no network namespaces in this kernel" }
        guard EtcdProcess.isInstalled else { return EtcdProcess.notInstalled }
        return nil
    }

    /// Whether a missing lab fails (CI set) rather than skips.
    package static var isRequired: Bool { ProcessInfo.processInfo.environment["CI"] != nil }

    package let root: URL
    package let etcd: EtcdProcess
    package let ttl: Int
    /// The nodes' lock grace period (`--lock-grace-seconds`).
    package let lockGrace: Int
    /// What every node exports, the same path on each.
    package var exportPath: String { root.appendingPathComponent("export").path }
    package private(set) var nodes: [String: LabNode] = [:]

    private init(root: URL, etcd: EtcdProcess, ttl: Int, lockGrace: Int) {
        self.root = root
        self.etcd = etcd
        self.ttl = ttl
        self.lockGrace = lockGrace
    }

    /// Builds the network, starts etcd and both nodes (with `hook` as their takeover hook, if
    /// given), runs `body`, then stops and removes everything.
    package static func with<T>(ttl: Int = 3, lockGrace: Int = 2, _ body: (HALab) async throws -> T) async throws -> T {
        await removeNetwork()
        try await buildNetwork()
        let root = URL(fileURLWithPath: "/tmp/swiftnfs-halab-\(UUID().uuidString.prefix(8))")
        do {
            let result = try await EtcdProcess.with(host: bridgeAddress) { etcd in
                let lab = HALab(root: root, etcd: etcd, ttl: ttl, lockGrace: lockGrace)
                defer { lab.killAll() }
                try FileManager.default.createDirectory(atPath: lab.exportPath, withIntermediateDirectories: true)
                try FileManager.default.createDirectory(at: lab.hooks, withIntermediateDirectories: true)
                for name in ["a", "b"] { lab.nodes[name] = try lab.start(name) }
                do {
                    return try await body(lab)
                } catch {
                    throw ServerFailure(error: error, log: lab.nodes.values.sorted { $0.name < $1.name }
                        .map { "--- node \($0.name):\n\($0.log)" }.joined(separator: "\n"))
                }
            }
            await removeNetwork()
            try? FileManager.default.removeItem(at: root)
            return result
        } catch {
            await removeNetwork()
            try? FileManager.default.removeItem(at: root)
            throw error
        }
    }

    static func buildNetwork() async throws {
        try await ip(["link", "add", bridge, "type", "bridge"])
        try await ip(["addr", "add", bridgeAddress + "/24", "dev", bridge])
        try await ip(["link", "set", bridge, "up"])
        let addresses = ["snfslab-a": nodeAddresses["a"]!, "snfslab-b": nodeAddresses["b"]!, client: "10.231.7.50"]
        for (i, ns) in namespaces.enumerated() {
            let outside = "snfslabv\(i)"
            try await ip(["netns", "add", ns])
            try await ip(["link", "add", outside, "type", "veth", "peer", "name", interface, "netns", ns])
            try await ip(["link", "set", outside, "master", bridge, "up"])
            try await ip(["-n", ns, "addr", "add", addresses[ns]! + "/24", "dev", interface])
            try await ip(["-n", ns, "link", "set", interface, "up"])
            try await ip(["-n", ns, "link", "set", "lo", "up"])
        }
    }

    /// Removes the namespaces (their veths go with them) and the bridge, if there.
    static func removeNetwork() async {
        for ns in namespaces { _ = try? await Tools.run("ip", ["netns", "del", ns], timeout: .seconds(10)) }
        // A namespace goes away in the background: its veths may outlive its name for a moment.
        let links = [bridge] + namespaces.indices.map { "snfslabv\($0)" }
        for link in links { _ = try? await Tools.run("ip", ["link", "del", link], timeout: .seconds(10)) }
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            let left = (try? await Tools.run("ip", ["-o", "link", "show"], timeout: .seconds(10)))?.stdout ?? ""
            if !links.contains(where: { left.contains(" \($0)@") || left.contains(" \($0):") }) { return }
            try? await Task.sleep(for: .milliseconds(50))
        }
    }

    @discardableResult
    static func ip(_ arguments: [String]) async throws -> ToolResult {
        let result = try await Tools.run("ip", arguments, timeout: .seconds(10))
        guard result.succeeded else { throw ToolFailure(message: "building the lab network failed: \(result)", result: result) }
        return result
    }

    /// Where the nodes' takeover hook writes its environment: one file per run, named
    /// NAME-ROLE-EPOCH.
    package var hooks: URL { root.appendingPathComponent("hooks") }

    /// The environment of each run of the takeover hook so far, by NAME-ROLE-EPOCH.
    package func hookRuns() -> [String: [String: String]] {
        var out: [String: [String: String]] = [:]
        for name in (try? FileManager.default.contentsOfDirectory(atPath: hooks.path)) ?? [] {
            let text = (try? String(contentsOf: hooks.appendingPathComponent(name), encoding: .utf8)) ?? ""
            var env: [String: String] = [:]
            for line in text.split(separator: "\n") {
                let kv = line.split(separator: "=", maxSplits: 1).map(String.init)
                if kv.count == 2 { env[kv[0]] = kv[1] }
            }
            out[name] = env
        }
        return out
    }

    /// Samples which nodes hold the address (every 100 ms or so) while `body` runs; returns
    /// what `body` returned and every sample.
    package func watchingHolders<T>(_ body: () async throws -> T) async throws -> (T, [[String]]) {
        let samples = Samples()
        let result = try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                while !Task.isCancelled {
                    if let h = try? await self.holders() { samples.append(h) }
                    try? await Task.sleep(for: .milliseconds(100))
                }
            }
            defer { group.cancelAll() }
            return try await body()
        }
        return (result, samples.all)
    }

    func start(_ name: String) throws -> LabNode {
        let hook = "env | grep ^SWIFTNFS_HA_ | sort > \(hooks.path)/$SWIFTNFS_HA_NAME-$SWIFTNFS_HA_ROLE-$SWIFTNFS_HA_EPOCH"
        let dir = root.appendingPathComponent(name)
        for sub in ["export", "state", "durable"] {
            try FileManager.default.createDirectory(at: dir.appendingPathComponent(sub), withIntermediateDirectories: true)
        }
        let serve = [try Binaries.swiftnfsd().path, "serve", "--export", exportPath, "--state-dir", dir.appendingPathComponent("state").path,
                     "--durable-dir", dir.appendingPathComponent("durable").path, "--portmap-port", "0", "--rpcbind-socket", "",
                     "--lock-grace-seconds", String(lockGrace), "--log-level", "info",
                     "--ha-etcd", etcd.url, "--ha-name", name, "--ha-address", Self.service, "--ha-interface", Self.interface,
                     "--ha-ttl", String(ttl), "--ha-takeover-hook", hook]
        // In the node's own mount namespace: its directory on the common export path, its own /run/swiftnfs.
        let script = "mount --bind \"$1\" \"$2\" && mkdir -p /run/swiftnfs && mount -t tmpfs lab /run/swiftnfs && shift 2 && exec \"$@\""
        let arguments = ["netns", "exec", Self.namespace(name), "/bin/sh", "-c", script, "sh",
                         dir.appendingPathComponent("export").path, exportPath] + serve
        return try LabNode(name: name, address: Self.nodeAddresses[name]!, arguments: arguments, directory: dir)
    }

    /// Starts node `name` again (after it was killed) on its directories as they were; the
    /// log of its earlier run is kept beside as `log.1`.
    package func restart(_ name: String) throws {
        let dir = root.appendingPathComponent(name)
        try? FileManager.default.removeItem(at: dir.appendingPathComponent("log.1"))
        try? FileManager.default.moveItem(at: dir.appendingPathComponent("log"), to: dir.appendingPathComponent("log.1"))
        nodes[name] = try start(name)
    }

    func killAll() {
        for node in nodes.values { node.signal(SIGKILL) }
        for node in nodes.values { node.waitForExit() }
    }

    /// The nodes whose lab0 holds the service address now.
    package func holders() async throws -> [String] {
        var out: [String] = []
        for name in nodes.keys.sorted() {
            let r = try await Tools.runChecked("ip", ["-n", Self.namespace(name), "-o", "addr", "show", "dev", Self.interface],
                                               timeout: .seconds(10))
            if r.stdout.contains(" \(Self.serviceIP)/") { out.append(name) }
        }
        return out
    }

    /// Waits until exactly `node` holds the address (or, with nil, exactly one node does); returns it.
    @discardableResult
    package func waitForHolder(_ node: String? = nil, timeout: Duration) async throws -> String {
        let deadline = ContinuousClock.now + timeout
        var last: [String] = []
        while ContinuousClock.now < deadline {
            last = try await holders()
            if last.count == 1, node == nil || last[0] == node { return last[0] }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw ToolFailure(message: "no single holder \(node ?? "") of \(Self.serviceIP) within \(timeout); holders: \(last)", result: nil)
    }

    /// Addresses, listening sockets and neighbours of every namespace, for failure messages.
    package func diagnostics() async -> String {
        var out = ""
        for ns in Self.namespaces {
            for command in [["addr"], ["neigh"]] {
                let r = try? await Tools.run("ip", ["-n", ns, "-o"] + command, timeout: .seconds(10))
                out += "--- \(ns): ip \(command.joined(separator: " "))\n\(r?.stdout ?? "")"
            }
            let ss = try? await Tools.run("ip", ["netns", "exec", ns, "ss", "-ltnp"], timeout: .seconds(10))
            out += "--- \(ns): ss -ltnp\n\(ss?.stdout ?? "")"
        }
        return out
    }

    /// `swiftnfsd ha probe` from the client namespace: NULL, MNT, GETATTR through `address`.
    package func probe(_ address: String = serviceIP, untilOk: Double? = nil) async throws -> ProbeResult {
        var arguments = ["netns", "exec", Self.client, try Binaries.swiftnfsd().path, "ha", "probe", "--server", address,
                         "--export", exportPath, "--timeout-ms", "500", "--interval-ms", "50"]
        if let untilOk { arguments += ["--until-ok", String(untilOk)] }
        let result = try await Tools.run("ip", arguments, timeout: .seconds(Int64((untilOk ?? 5) + 20)))
        return ProbeResult(result)
    }

    /// `swiftnfsd` with `arguments`, from the root namespace (which reaches etcd).
    package func swiftnfsd(_ arguments: [String]) async throws -> ToolResult {
        try await Tools.run(try Binaries.swiftnfsd().path, arguments, timeout: .seconds(60))
    }
}

/// What `swiftnfsd ha probe` printed: one line per attempt.
package struct ProbeResult: Sendable {
    package struct Attempt: Decodable, Sendable {
        package var ok: Bool
        package var monotonicNs: Int64
        package var error: String?

        enum CodingKeys: String, CodingKey {
            case ok, error
            case monotonicNs = "monotonic_ns"
        }
    }

    package var attempts: [Attempt]
    package var tool: ToolResult

    init(_ tool: ToolResult) {
        self.tool = tool
        attempts = tool.lines.compactMap { try? JSONDecoder().decode(Attempt.self, from: Data($0.utf8)) }
    }

    package var ok: Bool { attempts.last?.ok == true }
    /// CLOCK_MONOTONIC when the first attempt succeeded.
    package var firstOk: Duration? { attempts.first(where: \.ok).map { .nanoseconds($0.monotonicNs) } }
}

/// One node of the lab: `swiftnfsd serve` in its namespace (the pid is the server's: `ip netns
/// exec` and the shell exec it).
package final class LabNode: @unchecked Sendable {
    package let name: String
    /// The node's own address (not the service address).
    package let address: String
    package let directory: URL
    private let process = Process()
    private let logURL: URL

    init(name: String, address: String, arguments: [String], directory: URL) throws {
        self.name = name
        self.address = address
        self.directory = directory
        logURL = directory.appendingPathComponent("log")
        _ = FileManager.default.createFile(atPath: logURL.path, contents: nil)
        let log = try FileHandle(forWritingTo: logURL)
        defer { try? log.close() }
        process.executableURL = URL(fileURLWithPath: try Tools.path(of: "ip"))
        process.arguments = arguments
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = log
        process.standardError = log
        try Tools.launch(process)
    }

    package var stateDirectory: String { directory.appendingPathComponent("state").path }

    package var log: String { String(((try? String(contentsOf: logURL, encoding: .utf8)) ?? "").suffix(6000)) }

    package var isRunning: Bool { process.isRunning }

    package func signal(_ signal: Int32) {
        if process.isRunning { kill(process.processIdentifier, signal) }
    }

    func waitForExit() {
        if process.isRunning { kill(process.processIdentifier, SIGCONT) }
        process.waitUntilExit()
    }

    /// SIGKILL, and waits for the exit.
    package func kill9() async throws {
        signal(SIGKILL)
        _ = try await Tools.waitForExit(process, timeout: .seconds(15))
    }

    /// The node's `swiftnfsd status` lines (from its control socket).
    package func status() async throws -> String {
        try await Tools.runChecked(try Binaries.swiftnfsd().path, ["status", "--state-dir", stateDirectory], timeout: .seconds(15)).stdout
    }
}

final class Samples: @unchecked Sendable {
    private let lock = NSLock()
    private var samples: [[String]] = []

    func append(_ s: [String]) { lock.withLock { samples.append(s) } }
    var all: [[String]] { lock.withLock { samples } }
}
