import FoundationEssentials

/// `--ha-takeover-hook CMD`: run through /bin/sh after the node becomes the active (and after
/// it stops being the active), like keepalived's notify scripts, for what the built-in address
/// mover cannot do (moving a cloud provider's address). Environment: SWIFTNFS_HA_ROLE
/// (active|standby), SWIFTNFS_HA_ADDRESS (IP/PREFIX), SWIFTNFS_HA_INTERFACE, SWIFTNFS_HA_NAME,
/// SWIFTNFS_HA_EPOCH (the epoch led, or that was led). A hook that fails or outlives its time
/// limit is reported; it does not stop the takeover.
package struct TakeoverHook: Sendable {
    package var command: String
    package var timeout: Duration

    package init(command: String, timeout: Duration = .seconds(30)) {
        self.command = command
        self.timeout = timeout
    }

    package enum Role: String, Sendable { case active, standby }

    package func environment(role: Role, address: ServiceAddress, name: String, epoch: Int64) -> [String: String] {
        ["SWIFTNFS_HA_ROLE": role.rawValue, "SWIFTNFS_HA_ADDRESS": address.cidr, "SWIFTNFS_HA_INTERFACE": address.interface,
         "SWIFTNFS_HA_NAME": name, "SWIFTNFS_HA_EPOCH": String(epoch)]
    }

    package func run(role: Role, address: ServiceAddress, name: String, epoch: Int64) async throws -> ShellCommand.Outcome {
        try await ShellCommand("/bin/sh", ["-c", command], environment: environment(role: role, address: address, name: name, epoch: epoch),
                               timeout: timeout).run()
    }
}
