// Asks a Kafka listener for the cluster id with Kafka's own Java admin client: a KRaft
// controller listener (KIP-919: `bootstrap.controllers`; librdkafka cannot talk to one), or a
// broker listener with a client properties file as Kafka's own tools take it.
//
//   java -cp '<kafka lib>/*' AdminProbe.java controller|server HOST:PORT LOGIN.properties
//
// Prints the cluster id and exits 0, or prints the error and exits 1.
import java.io.FileReader;
import java.util.Properties;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;

public class AdminProbe {
    public static void main(String[] args) throws Exception {
        Properties config = new Properties();
        try (FileReader login = new FileReader(args[2])) {
            config.load(login);
        }
        String bootstrap = args[0].equals("controller") ? "bootstrap.controllers" : "bootstrap.servers";
        config.put(bootstrap, args[1]);
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
