// Asks a KRaft controller listener who leads the cluster, with Kafka's own Java admin client
// (KIP-919: `bootstrap.controllers`); librdkafka cannot talk to a controller listener.
//
//   java -cp '<kafka lib>/*' ControllerProbe.java HOST:PORT LOGIN.properties
//
// Prints the cluster id and exits 0, or prints the error and exits 1.
import java.io.FileReader;
import java.util.Properties;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;

public class ControllerProbe {
    public static void main(String[] args) throws Exception {
        Properties config = new Properties();
        try (FileReader login = new FileReader(args[1])) {
            config.load(login);
        }
        config.put("bootstrap.controllers", args[0]);
        config.put("request.timeout.ms", "5000");
        config.put("default.api.timeout.ms", "8000");
        try (Admin admin = Admin.create(config)) {
            String id = admin.describeCluster().clusterId().get(30, TimeUnit.SECONDS);
            System.out.println("cluster " + id);
        } catch (Exception exc) {
            System.out.println("refused: " + exc);
            System.exit(1);
        }
    }
}
