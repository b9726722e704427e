import NIOCore
import ONCRPC
import RPCTransport
import XDR

/// Portmap v2 GETPORT (RFC 1833 §3.1): the port a program version is registered on, asked of
/// a portmapper. Used to find an NFS or MOUNT server by host name alone, and by the server to
/// find a client's lock manager and status monitor for its callbacks.
public enum PortmapLookup {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// The port of `program` `version` on `transport`, asked of the portmapper at `portmapper`
    /// (over `via`, from `localAddress` when given).
    public static func port(program: UInt32, version: UInt32, transport: RPCTransportProtocol, portmapper: SocketAddress,
                            via: RPCTransportProtocol = .tcp, localAddress: SocketAddress? = nil,
                            timeout: TimeAmount = .seconds(10), group: EventLoopGroup) async throws -> Int {
        let rpc: RPCClient
        do {
            rpc = try await RPCClient.connect(to: portmapper, transport: via, localAddress: localAddress, group: group)
        } catch {
            throw Failure(description: "portmapper at \(portmapper): \(error)")
        }
        let mapping = PortmapMapping(program: program, version: version,
                                     protocolNumber: transport == .tcp ? Portmap.protocolTCP : Portmap.protocolUDP, port: 0)
        var arguments = ByteBuffer()
        arguments.writePortmapMapping(mapping)
        let port: UInt32
        do {
            var results = try await rpc.call(program: Portmap.program, version: 2, procedure: PortmapProcedure.getAddress,
                                             arguments: arguments, timeout: timeout)
            port = try results.readXDRUInt32()
            await rpc.close()
        } catch {
            await rpc.close()
            throw Failure(description: "portmapper at \(portmapper): \(error)")
        }
        guard port != 0 else {
            throw Failure(description: "program \(program) version \(version) (\(transport)) is not registered with the portmapper at \(portmapper)")
        }
        return Int(port)
    }

    /// The TCP port of `program` `version` on `host`, asked of its portmapper over TCP.
    public static func tcpPort(program: UInt32, version: UInt32, host: String, portmapPort: Int,
                               group: EventLoopGroup) async throws -> Int {
        let address: SocketAddress
        do {
            address = try SocketAddress.makeAddressResolvingHost(host, port: portmapPort)
        } catch {
            throw Failure(description: "portmapper on \(host):\(portmapPort): \(error)")
        }
        return try await port(program: program, version: version, transport: .tcp, portmapper: address, group: group)
    }
}
