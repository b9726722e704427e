import NFS3
import ONCRPC

extension NFS3Server {
    /// RFC 1813 §3.3.19. 1 MiB transfers on TCP (as knfsd), 32 KiB on UDP where a reply must
    /// fit one datagram; nanosecond times; hard links, symlinks and settable times.
    func fsinfo(_ call: NFS3FsinfoCall, context: NFS3CallContext) -> NFS3FsinfoReply {
        var resolved: (NFS3Export, UInt64)?
        do {
            let (export, id) = try resolve(call.fsRoot)
            resolved = (export, id)
            let a = try attributes(export, id)
            let max = UInt32(context.rpc.transport == .udp ? NFS3.maxUDPTransferSize : NFS3.maxWriteSize)
            return NFS3FsinfoReply(result: .okay(NFS3FsinfoOkay(
                attributes: a, rtmax: max, rtpref: max, rtmult: 4096, wtmax: max, wtpref: max, wtmult: 4096,
                dtpref: 64 * 1024, maxFileSize: UInt64(Int64.max), timeDelta: NFS3Time(seconds: 0, nanoseconds: 1),
                properties: NFS3FSInfoProperties.link | NFS3FSInfoProperties.symlink
                    | NFS3FSInfoProperties.homogeneous | NFS3FSInfoProperties.canSetTime)))
        } catch {
            return NFS3FsinfoReply(result: .fail(NFS3Status(error), resolved.flatMap { postOp($0.0, $0.1) }))
        }
    }
}
