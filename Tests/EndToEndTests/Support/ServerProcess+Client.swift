import NFS3Client
import NIOCore
import NIOPosix
import ONCRPC

extension ServerProcess {
    /// The project's own NFS client on this server's NFS port, calling as AUTH_SYS root.
    func connectAsRoot() async throws -> NFS3Client {
        try await NFS3Client.connect(
            to: try SocketAddress(ipAddress: "127.0.0.1", port: nfsPort),
            credentials: .sys(AuthSysParameters(uid: 0, gid: 0)), timeout: .seconds(10),
            group: MultiThreadedEventLoopGroup.singleton)
    }
}
