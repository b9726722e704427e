import Foundation
import NFS3
import NFS3Client
import NIOCore
import SwiftNFSTesting
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Failovers in a row, of every kind the issue names, each after writes the client saw
/// acknowledged: nothing acknowledged is lost, and the client's handles keep working. CI runs
/// one round of each kind; `SWIFTNFS_HA_SOAK=N` runs N rounds (the soak mode, e.g. 200).
extension HALabTests {
    enum Fault: CaseIterable {
        /// SIGKILL of the active.
        case kill
        /// SIGSTOP of the active; SIGCONT once the other serves (it fences and follows).
        case stop
        /// The active's link down (no etcd, no client, no standby); up again once the other serves.
        case partition
        /// The standby killed while it catches up, started again; then SIGKILL of the active.
        case standbyKilledDuringCatchUp
    }

    static var soakRounds: Int {
        ProcessInfo.processInfo.environment["SWIFTNFS_HA_SOAK"].flatMap(Int.init) ?? Fault.allCases.count
    }

    @Test func failoversInARowLoseNothingAcknowledged() async throws {
        try await lab { lab in
            var (active, standby) = try await Self.settled(lab)
            let first = try await lab.nfsClient()
            let root = try await first.mount(lab.exportPath)
            await first.close()
            var files: [(name: String, handle: NFS3FileHandle, data: [UInt8])] = []
            var outages: [Fault: [Duration]] = [:]
            for round in 0..<Self.soakRounds {
                let fault = Fault.allCases[round % Fault.allCases.count]
                try await Self.waitInSync(lab, active: active, standby: standby)
                // Acknowledged before the fault: a new file written FILE_SYNC, and one written
                // UNSTABLE and committed.
                let client = try await lab.nfsClient()
                for (i, stable) in [NFS3StableHow.fileSync, .unstable].enumerated() {
                    let name = "round-\(round)-\(i)"
                    let handle = try #require(try await client.create(root, Self.name(name)).object)
                    let data = Self.pattern(20_000 + 997 * (round % 50), seed: round * 2 + i)
                    try await Self.write(client, handle, data, stable: stable)
                    if stable == .unstable { _ = try await client.commit(handle, offset: 0, count: 0) }
                    files.append((name, handle, data))
                }
                await client.close()

                let old = lab.nodes[active]!
                let namespace = HALab.namespace(active)
                let started: ContinuousClock.Instant
                switch fault {
                case .kill:
                    started = .now
                    try await old.kill9()
                case .stop:
                    started = .now
                    old.signal(SIGSTOP)
                case .partition:
                    started = .now
                    try #require(try await Self.ip(["-n", namespace, "link", "set", HALab.interface, "down"]))
                case .standbyKilledDuringCatchUp:
                    try await lab.nodes[standby]!.kill9()
                    // More for it to catch up on, acknowledged by the active alone meanwhile.
                    let more = try await lab.nfsClient()
                    let name = "round-\(round)-behind"
                    let handle = try #require(try await more.create(root, Self.name(name)).object)
                    let data = Self.pattern(400_000, seed: 1000 + round)
                    try await Self.write(more, handle, data, stable: .fileSync)
                    files.append((name, handle, data))
                    await more.close()
                    try lab.restart(standby)
                    try await Task.sleep(for: .milliseconds(300))
                    try await lab.nodes[standby]!.kill9()
                    try lab.restart(standby)
                    try await Self.waitInSync(lab, active: active, standby: standby)
                    started = .now
                    try await old.kill9()
                }
                try await lab.waitForHolder(standby, timeout: .seconds(60))
                let probe = try await lab.probe(untilOk: 60)
                try #require(probe.ok, "\(probe.tool)")
                outages[fault, default: []].append(ContinuousClock.now - started)

                // Every byte acknowledged so far reads back, through the handles held.
                let check = try await lab.nfsClient()
                for f in files {
                    #expect(try await check.readAll(f.handle) == f.data, "round \(round) (\(fault)): \(f.name)")
                    #expect(try await check.lookup(root, Self.name(f.name)).object == f.handle, "round \(round): \(f.name)")
                }
                await check.close()

                // The old active comes back as the standby.
                switch fault {
                case .kill, .standbyKilledDuringCatchUp: try lab.restart(active)
                case .stop: old.signal(SIGCONT)
                case .partition: try #require(try await Self.ip(["-n", namespace, "link", "set", HALab.interface, "up"]))
                }
                (active, standby) = (standby, active)
            }
            for fault in Fault.allCases {
                let times = (outages[fault] ?? []).sorted()
                guard let worst = times.last else { continue }
                print("ha-lab: soak \(fault): \(times.count) failovers, median \(Self.seconds(times[times.count / 2])), worst \(Self.seconds(worst))")
            }
        }
    }

    /// `ip ARGS`; whether it succeeded.
    static func ip(_ arguments: [String]) async throws -> Bool {
        try await Tools.run("ip", arguments, timeout: .seconds(10)).succeeded
    }
}
