import FoundationEssentials

/// Puts the service address on this node and takes it off: the built-in mover for Linux
/// addresses (`LinuxAddressMover`), or a fake in tests. Every method may be called again with
/// the same arguments (idempotent).
package protocol AddressMover: Sendable {
    /// Holds `address` for `lifetime` from now: adds it, or renews its lifetime if it is there.
    /// Returns whether it was added (it was not there before). The kernel drops the address by
    /// itself when the lifetime runs out: an active that stops running (SIGSTOP, a paused VM)
    /// loses it without doing anything.
    func hold(_ address: ServiceAddress, lifetime: Duration) async throws -> Bool
    /// Tells the neighbours where the address now is (gratuitous ARP).
    func announce(_ address: ServiceAddress) async throws
    /// Takes the address off (nothing to do if it is not there).
    func release(_ address: ServiceAddress) async throws
}

package struct AddressMoverError: Error, CustomStringConvertible {
    package var description: String
    package init(_ description: String) { self.description = description }
}

/// `ip addr` and `arping` (Debian: iproute2, iputils-arping).
///
/// The address is added with a valid and preferred lifetime (`ip addr replace ... valid_lft N
/// preferred_lft N`), renewed while the node is the active, and no longer than the node's
/// proven lease: the kernel removes it when the lifetime ends. Lifetimes are whole seconds, at
/// least 1; Linux removes an expired address within about a quarter of a second.
package struct LinuxAddressMover: AddressMover {
    package var ip = "/usr/sbin/ip"
    package var arping = "/usr/bin/arping"
    package var timeout: Duration = .seconds(5)

    package init() {}

    /// Whole seconds of a lifetime, at least 1 (0 would mean "expired").
    package static func seconds(_ lifetime: Duration) -> Int64 {
        max(1, lifetime.components.seconds)
    }

    package func hold(_ address: ServiceAddress, lifetime: Duration) async throws -> Bool {
        let present = try await isPresent(address)
        let lft = String(Self.seconds(lifetime))
        try await run(ip, ["addr", "replace", address.cidr, "dev", address.interface, "valid_lft", lft, "preferred_lft", lft])
        return !present
    }

    package func announce(_ address: ServiceAddress) async throws {
        // Gratuitous ARP is IPv4's; an IPv6 address announces itself (unsolicited neighbour
        // advertisements from the kernel's duplicate address detection).
        guard address.isIPv4 else { return }
        // Two unsolicited ARP requests a second apart (iputils' interval is whole seconds): the
        // first moves the neighbours' caches at once, the second covers a lost first.
        try await run(arping, ["-U", "-c", "2", "-I", address.interface, address.ip])
    }

    package func release(_ address: ServiceAddress) async throws {
        guard try await isPresent(address) else { return }
        do {
            try await run(ip, ["addr", "del", address.cidr, "dev", address.interface])
        } catch {
            // The lifetime may have run out between the check and the delete (a node stepping
            // down as its lease ends): the address is gone, which is all a release asks.
            if try await isPresent(address) { throw error }
        }
    }

    func isPresent(_ address: ServiceAddress) async throws -> Bool {
        let outcome = try await ShellCommand(ip, ["-o", "addr", "show", "dev", address.interface], timeout: timeout).run()
        guard outcome.succeeded else { throw AddressMoverError("ip addr show dev \(address.interface): \(outcome)") }
        return Self.lists(outcome.output, address)
    }

    /// Whether `ip -o addr show` output has the address (any prefix).
    package static func lists(_ output: String, _ address: ServiceAddress) -> Bool {
        output.split(separator: "\n").contains { line in
            let words = line.split(separator: " ")
            return zip(words, words.dropFirst()).contains { ($0 == "inet" || $0 == "inet6") && $1.split(separator: "/").first.map(String.init) == address.ip }
        }
    }

    private func run(_ executable: String, _ arguments: [String]) async throws {
        let outcome = try await ShellCommand(executable, arguments, timeout: timeout).run()
        guard outcome.succeeded else {
            throw AddressMoverError("\(([executable] + arguments).joined(separator: " ")): \(outcome)")
        }
    }
}
