import Logging
import NIOCore
import ONCRPC
import XDR

/// Portmap v2 and rpcbind v3/v4 (RFC 1833) as far as mount.nfs, rpcinfo and showmount use
/// them. SET and UNSET are accepted only from the loopback address (no third-party
/// registration over the network); CALLIT/BCAST and INDIRECT are not offered, so the service
/// cannot be used to amplify traffic.
package struct PortmapProgram: RPCProgram {
    package let registry: PortmapRegistry
    /// Seconds since the epoch for GETTIME (injected for tests).
    let now: @Sendable () -> UInt32
    let logger: Logger
    let refusals = RefusalLog()

    package init(registry: PortmapRegistry, logger: Logger, now: @escaping @Sendable () -> UInt32) {
        self.registry = registry
        self.logger = logger
        self.now = now
    }

    package var program: UInt32 { Portmap.program }
    package var versions: ClosedRange<UInt32> { Portmap.versions }

    package func traits(procedure: UInt32, version: UInt32) -> RPCProcedureTraits? {
        switch procedure {
        case PortmapProcedure.null, PortmapProcedure.set, PortmapProcedure.unset, PortmapProcedure.getAddress,
             PortmapProcedure.dump:
            return .inline
        case PortmapProcedure.getTime where version >= 3:
            return .inline
        case PortmapProcedure.getVersionAddress where version == 4:
            return .inline
        default:
            return nil
        }
    }

    /// Bytes after the arguments are ignored, as rpcbind's XDR decoding ignores them
    /// (pyNfsClient sends DUMP with 8 bytes too many); NFS and MOUNT stay strict.
    package func handle(_ call: RPCCall, context: RPCCallContext, results: inout ByteBuffer) throws -> RPCProcedureOutcome {
        var args = call.arguments
        let v2 = call.version == 2
        switch call.procedure {
        case PortmapProcedure.null:
            break
        case PortmapProcedure.set, PortmapProcedure.unset:
            let binding: RPCBinding
            if v2 {
                let m = try args.readPortmapMapping()
                binding = RPCBinding(program: m.program, version: m.version, netid: Self.netid(protocolNumber: m.protocolNumber),
                                     address: UniversalAddress.make(host: "0.0.0.0", port: Int(m.port)), owner: "")
            } else {
                binding = try args.readRPCBinding()
            }
            guard context.remoteAddress?.isLoopback == true else {
                let peer = context.remoteAddress?.ipAddress ?? "-"
                if refusals.shouldLog("\(peer) set") {
                    logger.warning("portmap registration refused: only local programs may register", metadata: [
                        "portmap.client": "\(peer)", "portmap.program": "\(binding.program)",
                    ])
                }
                results.writeXDRBool(false)
                return .success
            }
            let ok = call.procedure == PortmapProcedure.set
                ? registry.set(binding)
                : registry.unset(program: binding.program, version: binding.version, netid: v2 ? "" : binding.netid)
            results.writeXDRBool(ok)
        case PortmapProcedure.getAddress where v2:
            let m = try args.readPortmapMapping()
            let b = registry.lookup(program: m.program, version: m.version,
                                    netid: Self.netid(protocolNumber: m.protocolNumber), anyVersion: true)
            results.writeXDRUInt32(UInt32(b.flatMap { UniversalAddress.parse($0.address)?.port } ?? 0))
        case PortmapProcedure.getAddress, PortmapProcedure.getVersionAddress:
            let want = try args.readRPCBinding()
            let netid = want.netid.isEmpty ? (context.transport == .tcp ? "tcp" : "udp") : want.netid
            let b = registry.lookup(program: want.program, version: want.version, netid: netid,
                                    anyVersion: call.procedure == PortmapProcedure.getAddress)
            results.writeXDRString(b.map { Self.merge($0, local: context.localAddress) } ?? "")
        case PortmapProcedure.dump where v2:
            let mappings = registry.all.compactMap { b -> PortmapMapping? in
                guard let proto = Self.protocolNumber(netid: b.netid), let port = UniversalAddress.parse(b.address)?.port else {
                    return nil
                }
                return PortmapMapping(program: b.program, version: b.version, protocolNumber: proto, port: UInt32(port))
            }
            results.writeXDRList(mappings) { $0.writePortmapMapping($1) }
        case PortmapProcedure.dump:
            let bindings = registry.all.map { b -> RPCBinding in
                var b = b
                b.address = Self.merge(b, local: context.localAddress)
                return b
            }
            results.writeXDRList(bindings) { $0.writeRPCBinding($1) }
        case PortmapProcedure.getTime:
            results.writeXDRUInt32(now())
        default:
            return .failure(.procUnavail)
        }
        return .success
    }

    static func netid(protocolNumber: UInt32) -> String {
        protocolNumber == Portmap.protocolUDP ? "udp" : protocolNumber == Portmap.protocolTCP ? "tcp" : "?"
    }

    static func protocolNumber(netid: String) -> UInt32? {
        switch netid {
        case "tcp": return Portmap.protocolTCP
        case "udp": return Portmap.protocolUDP
        default: return nil
        }
    }
    // (Portmap v2 DUMP lists only the IPv4 netids; tcp6/udp6 are for rpcbind v3/v4.)

    /// A binding registered on the wildcard address is answered with the address the call came
    /// in on (rpcbind's "merged address"), so the client connects to something it can reach,
    /// written in the family of the binding's netid: an IPv4-mapped address of a call to a
    /// dual-stack socket as plain IPv4 for tcp/udp, loopback for a call on the local socket.
    static func merge(_ b: RPCBinding, local: SocketAddress?) -> String {
        guard let (host, port) = UniversalAddress.parse(b.address), host == "0.0.0.0" || host == "::" else { return b.address }
        let v6 = b.netid.hasSuffix("6")
        guard var localHost = local?.ipAddress else {
            return UniversalAddress.make(host: v6 ? "::1" : "127.0.0.1", port: port)
        }
        if v6 {
            if !localHost.contains(":") { localHost = "::ffff:" + localHost }
        } else if localHost.hasPrefix("::ffff:") {
            localHost.removeFirst("::ffff:".count)
        } else if localHost == "::1" {
            localHost = "127.0.0.1"
        } else if localHost.contains(":") {
            return b.address  // asked over IPv6 for an IPv4 address the server listens on: every one
        }
        return UniversalAddress.make(host: localHost, port: port)
    }
}
