import NIOCore
import ONCRPC
import Portmap
import RPCTransport
import XDR

/// Portmap v2 GETPORT (RFC 1833 §3.1): the TCP port a program version is registered on, for
/// finding an NFS or MOUNT server by host name alone.
public enum PortmapLookup {
    public static func tcpPort(program: UInt32, version: UInt32, host: String, portmapPort: Int,
                               group: EventLoopGroup) async throws -> Int {
        let address = try SocketAddress.makeAddressResolvingHost(host, port: portmapPort)
        let rpc = try await RPCClient.connect(to: address, transport: .tcp, group: group)
        let mapping = PortmapMapping(program: program, version: version, protocolNumber: Portmap.protocolTCP, port: 0)
        var arguments = ByteBuffer()
        arguments.writePortmapMapping(mapping)
        let port: UInt32
        do {
            var results = try await rpc.call(program: Portmap.program, version: 2, procedure: PortmapProcedure.getAddress,
                                             arguments: arguments, timeout: .seconds(10))
            port = try results.readXDRUInt32()
            await rpc.close()
        } catch {
            await rpc.close()
            throw NFS3ClientError(.setup, "portmapper on \(host):\(portmapPort): \(error)")
        }
        guard port != 0 else {
            throw NFS3ClientError(.setup, "program \(program) version \(version) is not registered with the portmapper on \(host):\(portmapPort)")
        }
        return Int(port)
    }
}
