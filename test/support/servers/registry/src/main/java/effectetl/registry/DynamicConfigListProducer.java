package effectetl.registry;

import io.apicurio.common.apps.config.DynamicConfigPropertyList;
import javax.enterprise.inject.Produces;
import javax.inject.Singleton;
import java.util.List;

/**
 * The registry's build-time extension that lists its dynamic (runtime-editable) settings is not
 * published; this test server edits none of them, so the list it provides is empty.
 */
public class DynamicConfigListProducer {
  @Produces
  @Singleton
  DynamicConfigPropertyList dynamicConfigProperties() {
    return new DynamicConfigPropertyList(List.of());
  }
}
