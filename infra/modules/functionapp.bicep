// The Function App on the Flex Consumption plan, running as the user-assigned identity. Every
// setting lib/settings.ts reads is wired here (docs/deploy.md lists the local-only ones).
param location string
param tags object
param planName string
param appName string
param nodeVersion string
param identityId string
param identityClientId string
param storageName string
param deploymentContainerUrl string
param insightsName string
param iotHubName string
param telemetryConsumerGroup string
param simulatorEnabled bool
param simulatorDeviceCount int
param telemetryAlertThreshold string
param telemetryRetentionDays int

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageName
}

resource insights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: insightsName
}

resource hub 'Microsoft.Devices/IotHubs@2023-06-30' existing = {
  name: iotHubName
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    tier: 'FlexConsumption'
    name: 'FC1'
  }
  properties: {
    reserved: true
  }
}

var eventsEndpoint = hub.properties.eventHubEndpoints.events
// The built-in endpoint's connection string, with the read-only policy's key. It lives only in
// this app setting (never an output).
var eventsConnection = 'Endpoint=${eventsEndpoint.endpoint};SharedAccessKeyName=telemetryreader;SharedAccessKey=${filter(hub.listKeys().value, k => k.keyName == 'telemetryreader')[0].primaryKey};EntityPath=${eventsEndpoint.path}'

resource app 'Microsoft.Web/sites@2024-04-01' = {
  name: appName
  location: location
  tags: union(tags, { 'azd-service-name': 'api' })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: deploymentContainerUrl
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: 40
        instanceMemoryMB: 2048
      }
      runtime: {
        name: 'node'
        version: nodeVersion
      }
    }
    siteConfig: {
      minTlsVersion: '1.2'
      appSettings: [
        { name: 'AzureWebJobsStorage__accountName', value: storage.name }
        { name: 'AzureWebJobsStorage__credential', value: 'managedidentity' }
        { name: 'AzureWebJobsStorage__clientId', value: identityClientId }
        { name: 'AzureWebJobsStorage__tableServiceUri', value: storage.properties.primaryEndpoints.table }
        { name: 'APPLICATIONINSIGHTS_CONNECTION_STRING', value: insights.properties.ConnectionString }
        { name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING', value: 'ClientId=${identityClientId};Authorization=AAD' }
        { name: 'AZURE_CLIENT_ID', value: identityClientId }
        // The host refuses bodies over 1 MB before the app buffers them (default 100 MB); the
        // API's own limit is 64 KB, so its problem+json 413 still answers anything in between.
        { name: 'FUNCTIONS_REQUEST_BODY_SIZE_LIMIT', value: '1048576' }
        { name: 'IOTHUB_HOST_NAME', value: hub.properties.hostName }
        { name: 'IOTHUB_EVENTS_CONNECTION', value: eventsConnection }
        { name: 'IOTHUB_EVENTS_NAME', value: eventsEndpoint.path }
        { name: 'IOTHUB_EVENTS_CONSUMER_GROUP', value: telemetryConsumerGroup }
        { name: 'TELEMETRY_ALERT_THRESHOLD', value: telemetryAlertThreshold }
        { name: 'TELEMETRY_DEADLETTER_MAX_BODY_BYTES', value: '4096' }
        { name: 'TELEMETRY_RETENTION_DAYS', value: string(telemetryRetentionDays) }
        { name: 'TELEMETRY_PURGE_SCHEDULE', value: '0 */5 * * * *' }
        { name: 'TELEMETRY_STALL_SECONDS', value: '60' }
        { name: 'FEEDBACK_SCHEDULE', value: '*/30 * * * * *' }
        { name: 'FEEDBACK_DRAIN_SECONDS', value: '10' }
        { name: 'SIMULATOR_ENABLED', value: string(simulatorEnabled) }
        { name: 'SIMULATOR_SCHEDULE', value: '*/10 * * * * *' }
        { name: 'SIMULATOR_DEVICE_COUNT', value: string(simulatorDeviceCount) }
        { name: 'SIMULATOR_DEVICE_PREFIX', value: 'sim' }
        { name: 'SIMULATOR_AUTO_PROVISION', value: 'true' }
        { name: 'SIMULATOR_CONNECTS_PER_SECOND', value: '50' }
      ]
    }
  }
}

output name string = app.name
output url string = 'https://${app.properties.defaultHostName}'
