import Daemon
import FileStore
import Foundation
import HA
import NFS3Client
import SwiftNFSTesting
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Records what a node asks of its address mover, in order, instead of touching an interface.
final class FakeMover: AddressMover, @unchecked Sendable {
    private let lock = NSLock()
    private var log: [String] = []
    private var held = false

    func hold(_ address: ServiceAddress, lifetime: Duration) async throws -> Bool {
        lock.withLock {
            log.append("hold \(LinuxAddressMover.seconds(lifetime))")
            defer { held = true }
            return !held
        }
    }

    func announce(_ address: ServiceAddress) async throws { lock.withLock { log.append("announce") } }

    func release(_ address: ServiceAddress) async throws {
        lock.withLock {
            log.append("release")
            held = false
        }
    }

    var calls: [String] { lock.withLock { log } }
}

/// A serving node in this process (`withTestServer` with `--ha-*` settings and a fake address
/// mover) against a real etcd: it serves once it leads, stops answering and drops the address
/// when its lease can no longer be proven, and takes over again when etcd is back.
@Suite struct ServingNodeTests {
    static func eventually(_ what: String, _ timeout: Duration = .seconds(15), _ condition: () async -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while !(await condition()) {
            guard ContinuousClock.now < deadline else { throw ToolFailure(message: "not within \(timeout): \(what)", result: nil) }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    @Test(.enabled(if: EtcdProcess.isRequired, Comment(rawValue: EtcdProcess.notInstalled)))
    func servesWhileActiveStepsDownWhenTheLeaseIsUnprovenAndTakesOverAgain() async throws {
        try await EtcdProcess.with { etcd in
            let mover = FakeMover()
            let hookLog = FileManager.default.temporaryDirectory.appendingPathComponent("swiftnfs-hook-\(UUID().uuidString)").path
            defer { try? FileManager.default.removeItem(atPath: hookLog) }
            var ha = HighAvailabilityConfiguration(
                etcd: try EtcdClient(endpoints: [etcd.url], timeout: .seconds(1)), keys: ClusterKeys(cluster: "serving-\(UUID().uuidString)"),
                name: "solo", address: ServiceAddress("127.0.0.2/8", interface: "lo")!)
            ha.ttl = .seconds(2)
            ha.etcdTimeout = .seconds(1)
            ha.mover = mover
            ha.hook = TakeoverHook(command: "echo \"$SWIFTNFS_HA_ROLE $SWIFTNFS_HA_NAME $SWIFTNFS_HA_ADDRESS\" >> \(hookLog)")
            var options = TestServerOptions()
            options.highAvailability = ha
            try await withTestServer(options) { server, client, root in
                // Active: a release left from an earlier run first, then the address held for
                // no longer than the lease, and announced.
                try await Self.eventually("announced") { mover.calls.contains("announce") }
                #expect(mover.calls.first == "release")
                let holds = mover.calls.filter { $0.hasPrefix("hold ") }.compactMap { Int($0.dropFirst(5)) }
                #expect(!holds.isEmpty && holds.allSatisfy { (1...2).contains($0) }, "\(mover.calls)")
                try await client.null()
                _ = try await client.getattr(root)

                // etcd stops answering: within the TTL the node stops serving and drops the address.
                etcd.signal(SIGSTOP)
                let stopped = ContinuousClock.now
                try await Self.eventually("released", .seconds(10)) { mover.calls.last == "release" }
                print("serving node: address dropped \(ContinuousClock.now - stopped) after etcd stopped (TTL 2 s)")
                // Within the TTL (2 s) give or take a busy machine's scheduling; the address's own
                // kernel lifetime (no longer than the proven lease) is the hard bound.
                #expect(ContinuousClock.now - stopped < .seconds(6))
                let other = try await server.client()
                do {
                    try await other.null()
                    Issue.record("a node that no longer leads answered")
                } catch {
                    // Reached at an address other than the service address: refused openly.
                    #expect("\(error)".contains("progUnavail"), "\(error)")
                }
                await other.close()

                // etcd back: the node leads again, and serves on a new connection.
                let announced = mover.calls.filter { $0 == "announce" }.count
                etcd.signal(SIGCONT)
                try await Self.eventually("announced again", .seconds(20)) { mover.calls.filter { $0 == "announce" }.count > announced }
                let again = try await server.client()
                try await Self.eventually("served again") { (try? await again.null()) != nil }
                await again.close()
            }
            let hooks = ((try? String(contentsOfFile: hookLog, encoding: .utf8)) ?? "").split(separator: "\n")
            #expect(Array(hooks.prefix(3)) == ["active solo 127.0.0.2/8", "standby solo 127.0.0.2/8", "active solo 127.0.0.2/8"],
                    "\(hooks)")
        }
    }

    @Test func serviceAddressesParse() {
        #expect(ServiceAddress("10.0.0.100/24", interface: "eth0")?.cidr == "10.0.0.100/24")
        #expect(ServiceAddress("fd00::64/64", interface: "eth0")?.isIPv4 == false)
        for bad in ["10.0.0.100", "10.0.0.256/24", "10.0.0.1/33", "10.0.0/24", "host/24", "/24"] {
            #expect(ServiceAddress(bad, interface: "eth0") == nil, "\(bad)")
        }
        #expect(ServiceAddress("10.0.0.100/24", interface: "") == nil)
    }

    @Test func ipAddrOutputIsRead() {
        let output = """
            2: lab0    inet 10.231.7.12/24 scope global lab0\\       valid_lft forever preferred_lft forever
            2: lab0    inet 10.231.7.100/24 scope global secondary dynamic lab0\\       valid_lft 1sec preferred_lft 1sec
            """
        #expect(LinuxAddressMover.lists(output, ServiceAddress("10.231.7.100/24", interface: "lab0")!))
        #expect(!LinuxAddressMover.lists(output, ServiceAddress("10.231.7.10/24", interface: "lab0")!))
        #expect(LinuxAddressMover.seconds(.milliseconds(2900)) == 2)
        #expect(LinuxAddressMover.seconds(.milliseconds(300)) == 1)
    }

    /// A step-down whose address ran out between `ip addr show` and `ip addr del` has released
    /// it (no false alarm); a delete that fails with the address still there is an error.
    @Test("release: an address that expired just before its delete counts as released; one still there does not")
    func releaseRacesExpiry() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ip-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // A stand-in for ip(8): `show` lists the address while the file `present` exists; `del`
        // fails, and first removes the file when `expires` exists (the kernel dropping the
        // address at the end of its lifetime, just before the delete).
        let script = """
            #!/bin/sh
            case "$*" in
            *show*) [ -e \(dir)/present ] && echo '2: lab0    inet 10.231.7.100/24 scope global secondary dynamic lab0'; exit 0 ;;
            *del*) [ -e \(dir)/expires ] && rm -f \(dir)/present; echo 'RTNETLINK answers: Cannot assign requested address' >&2; exit 2 ;;
            esac
            exit 1
            """
        try script.write(toFile: dir + "/ip", atomically: true, encoding: .utf8)
        chmod(dir + "/ip", 0o755)
        var mover = LinuxAddressMover()
        mover.ip = dir + "/ip"
        let address = ServiceAddress("10.231.7.100/24", interface: "lab0")!

        _ = FileManager.default.createFile(atPath: dir + "/present", contents: nil)
        _ = FileManager.default.createFile(atPath: dir + "/expires", contents: nil)
        try await mover.release(address)

        try FileManager.default.removeItem(atPath: dir + "/expires")
        _ = FileManager.default.createFile(atPath: dir + "/present", contents: nil)
        await #expect(throws: AddressMoverError.self) { try await mover.release(address) }
    }

    /// A command whose file is still open for writing somewhere (a script just written, its
    /// writer's descriptor held for a moment by a child another thread was starting) starts once
    /// it is closed, instead of failing with ETXTBSY.
    @Test("a command still open for writing when started runs once the writer closes it")
    func commandsWaitOutATextFileBusy() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("busy-\(UUID().uuidString)").path
        defer { unlink(path) }
        let writer = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0o755)
        #expect(writer >= 0)
        let text = "#!/bin/sh\necho ran\n"
        _ = text.withCString { write(writer, $0, strlen($0)) }
        async let outcome = ShellCommand(path, [], timeout: .seconds(10)).run()
        try await Task.sleep(for: .milliseconds(200))
        close(writer)
        let ran = try await outcome
        #expect(ran.succeeded && ran.output == "ran\n", "\(ran)")
    }

    /// Commands start with none of this process's descriptors but stdin, stdout and stderr (a
    /// server's client connections must not leak into `ip` or a hook), no signal blocked, and
    /// their exit status and output come back.
    @Test("a command sees only descriptors 0-2 of its own, no blocked signal; its status and output come back")
    func commandsStartClean() async throws {
        let held = (0..<64).map { _ in open("/dev/null", O_RDONLY) }  // not close-on-exec
        defer { for fd in held { close(fd) } }
        // The shell reads its own mask with builtins: a child reading it (grep) can catch the
        // shell inside fork, where the C library blocks every signal for a moment.
        let readMask = "while read -r k v; do [ \"$k\" = SigBlk: ] && printf '%s\\t%s\\n' \"$k\" \"$v\"; done < /proc/$$/status"
        let outcome = try await ShellCommand("/bin/sh", ["-c", "ls /proc/$$/fd; \(readMask); echo done >&2; exit 3"],
                                             timeout: .seconds(10)).run()
        #expect(outcome.status == 3 && !outcome.timedOut)
        let lines = outcome.output.split(separator: "\n")
        #expect(Set(lines.prefix { Int($0) != nil }) == ["0", "1", "2"], "\(outcome.output)")
        #expect(lines.contains("SigBlk:\t0000000000000000") && lines.last == "done", "\(outcome.output)")
    }

    /// A hook that outlives its limit is killed, with everything it started, and reported.
    @Test func aHookIsBoundedInTime() async throws {
        // The limit leaves the shell time to start and print on a busy machine; the sleeps outlive it.
        let hook = TakeoverHook(command: "echo started; sleep 30 & sleep 30", timeout: .seconds(2))
        let started = ContinuousClock.now
        let outcome = try await hook.run(role: .active, address: ServiceAddress("10.0.0.1/24", interface: "eth0")!, name: "n", epoch: 7)
        #expect(outcome.timedOut)
        #expect(!outcome.succeeded)
        #expect(outcome.output.contains("started"))
        // Killed at its limit, not after its 30 s sleeps (the margin is for a busy machine).
        #expect(ContinuousClock.now - started < .seconds(20))
        let env = try await TakeoverHook(command: "echo $SWIFTNFS_HA_ROLE $SWIFTNFS_HA_EPOCH $SWIFTNFS_HA_INTERFACE; exit 3")
            .run(role: .standby, address: ServiceAddress("10.0.0.1/24", interface: "eth0")!, name: "n", epoch: 7)
        #expect(env.status == 3)
        #expect(env.output.trimmingCharacters(in: .whitespacesAndNewlines) == "standby 7 eth0")
    }
}
