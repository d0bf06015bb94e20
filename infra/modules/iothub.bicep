// The IoT Hub, a consumer group reserved for the telemetry function, a narrow policy for reading
// the built-in endpoint, and Entra ID access for the app's registry and C2D calls.
param location string
param tags object
param hubName string
param sku string
param capacity int
param partitionCount int
param retentionDays int
param consumerGroup string
param identityPrincipalId string

resource hub 'Microsoft.Devices/IotHubs@2023-06-30' = {
  name: hubName
  location: location
  tags: tags
  sku: {
    name: sku
    capacity: capacity
  }
  properties: {
    eventHubEndpoints: {
      events: {
        retentionTimeInDays: retentionDays
        partitionCount: partitionCount
      }
    }
    // The trigger cannot use an identity, so it gets a policy that can only read events.
    authorizationPolicies: [
      {
        keyName: 'iothubowner'
        rights: 'RegistryWrite, ServiceConnect, DeviceConnect'
      }
      {
        keyName: 'telemetryreader'
        rights: 'ServiceConnect'
      }
    ]
    cloudToDevice: {
      maxDeliveryCount: 10
      defaultTtlAsIso8601: 'PT1H'
      feedback: {
        lockDurationAsIso8601: 'PT1M'
        ttlAsIso8601: 'PT1H'
        maxDeliveryCount: 10
      }
    }
  }
}

resource telemetryGroup 'Microsoft.Devices/IotHubs/eventHubEndpoints/ConsumerGroups@2023-06-30' = {
  name: '${hub.name}/events/${consumerGroup}'
  properties: {
    name: consumerGroup
  }
}

// IoT Hub Data Contributor (data actions Microsoft.Devices/IotHubs/*): registry read/write,
// C2D send/feedback, twin read/write and direct methods through Entra ID
// (azure-iothub Registry.fromTokenCredential / Client.fromTokenCredential).
var iotHubDataContributor = '4fc6c259-987e-4a07-842e-c321cc9d413f'

resource dataContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(hub.id, identityPrincipalId, iotHubDataContributor)
  scope: hub
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', iotHubDataContributor)
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
  }
}

output name string = hub.name
output hostName string = hub.properties.hostName
