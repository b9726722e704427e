import NFS3Client
import NIOCore
import NIOPosix
import ONCRPC

extension NFS3Client {
    /// The project's typed NFSv3 client, connected over TCP to `ip`:`port` and calling as
    /// AUTH_SYS root from `machine` (the exports give `--export` directories to everyone
    /// without root squashing).
    package static func asRoot(ip: String, port: Int, machine: String) async throws -> NFS3Client {
        try await NFS3Client.connect(
            to: try SocketAddress(ipAddress: ip, port: port),
            credentials: .sys(AuthSysParameters(machineName: machine, uid: 0, gid: 0)),
            timeout: .seconds(20), group: MultiThreadedEventLoopGroup.singleton)
    }
}

extension ServerProcess {
    /// `NFS3Client.asRoot` to this server on loopback.
    package func nfsClient(machine: String) async throws -> NFS3Client {
        try await NFS3Client.asRoot(ip: "127.0.0.1", port: nfsPort, machine: machine)
    }
}

extension HALab {
    /// `NFS3Client.asRoot` to the service address, from the root namespace (on the bridge).
    package func nfsClient(machine: String = "halab-client") async throws -> NFS3Client {
        try await NFS3Client.asRoot(ip: Self.serviceIP, port: 2049, machine: machine)
    }
}
