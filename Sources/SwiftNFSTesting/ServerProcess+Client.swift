import NFS3Client
import NIOCore
import NIOPosix
import ONCRPC

extension ServerProcess {
    /// The project's typed NFSv3 client, connected to this server over TCP on loopback and
    /// calling as AUTH_SYS root from `machine` (the exports give `--export` directories to
    /// everyone without root squashing).
    package func nfsClient(machine: String) async throws -> NFS3Client {
        try await NFS3Client.connect(
            to: try SocketAddress(ipAddress: "127.0.0.1", port: nfsPort),
            credentials: .sys(AuthSysParameters(machineName: machine, uid: 0, gid: 0)),
            timeout: .seconds(20), group: MultiThreadedEventLoopGroup.singleton)
    }
}
