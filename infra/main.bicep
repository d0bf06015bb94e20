// iot-hub-functions in Azure: IoT Hub, Storage, a Flex Consumption Function App, Application
// Insights and a user-assigned managed identity. Plain resource declarations only (no registry
// modules), so the template builds offline.
targetScope = 'resourceGroup'

@minLength(1)
@maxLength(40)
@description('Name of the environment (azd sets it); used to derive resource names.')
param environmentName string

@description('Azure region for every resource.')
param location string = resourceGroup().location

@description('IoT Hub SKU.')
@allowed(['F1', 'B1', 'B2', 'B3', 'S1', 'S2', 'S3'])
param iotHubSku string = 'S1'

@description('IoT Hub units.')
@minValue(1)
param iotHubCapacity int = 1

@description('Partitions of the built-in Event Hub-compatible endpoint (fixed after creation).')
@minValue(2)
@maxValue(32)
param iotHubPartitionCount int = 4

@description('Days the built-in endpoint retains device-to-cloud messages.')
@minValue(1)
@maxValue(7)
param iotHubRetentionDays int = 1

@description('Consumer group the telemetry function reads with.')
param telemetryConsumerGroup string = 'telemetry-fn'

@description('Run the simulated device fleet in Azure (it sends real telemetry and costs messages).')
param simulatorEnabled bool = false

@description('Simulated devices when the simulator is enabled.')
@minValue(0)
param simulatorDeviceCount int = 3

@description('windSpeed above this raises an alert.')
param telemetryAlertThreshold string = '15'

@description('Days readings, alerts and dead letters are kept (by enqueue time) before the purge deletes them.')
@minValue(1)
@maxValue(36500)
param telemetryRetentionDays int = 7

@description('Node.js version of the Function App: 22 (default) or 24, the LTS versions Flex Consumption runs (Node 20 support ended 2026-04-30). CI tests on 20 and 22.')
@allowed(['22', '24'])
param nodeVersion string = '22'

@description('Object id of the deploying user or principal (azd sets AZURE_PRINCIPAL_ID); gets blob access for deployments. Empty to skip.')
param principalId string = ''

var token = toLower(uniqueString(subscription().id, resourceGroup().id, environmentName))
var tags = { 'azd-env-name': environmentName }
var names = {
  identity: 'id-${environmentName}-${token}'
  workspace: 'log-${environmentName}-${token}'
  insights: 'appi-${environmentName}-${token}'
  storage: take('st${replace(environmentName, '-', '')}${token}', 24)
  iotHub: 'iot-${environmentName}-${token}'
  plan: 'plan-${environmentName}-${token}'
  functionApp: 'func-${environmentName}-${token}'
}
var deploymentContainer = 'app-package-${take(token, 8)}'

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: names.identity
  location: location
  tags: tags
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  params: {
    location: location
    tags: tags
    workspaceName: names.workspace
    insightsName: names.insights
    identityPrincipalId: identity.properties.principalId
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  params: {
    location: location
    tags: tags
    storageName: names.storage
    deploymentContainer: deploymentContainer
    identityPrincipalId: identity.properties.principalId
    deployerPrincipalId: principalId
  }
}

module iotHub 'modules/iothub.bicep' = {
  name: 'iothub'
  params: {
    location: location
    tags: tags
    hubName: names.iotHub
    sku: iotHubSku
    capacity: iotHubCapacity
    partitionCount: iotHubPartitionCount
    retentionDays: iotHubRetentionDays
    consumerGroup: telemetryConsumerGroup
    identityPrincipalId: identity.properties.principalId
  }
}

module functionApp 'modules/functionapp.bicep' = {
  name: 'functionapp'
  params: {
    location: location
    tags: tags
    planName: names.plan
    appName: names.functionApp
    nodeVersion: nodeVersion
    identityId: identity.id
    identityClientId: identity.properties.clientId
    storageName: storage.outputs.name
    deploymentContainerUrl: '${storage.outputs.blobEndpoint}${deploymentContainer}'
    insightsName: monitoring.outputs.insightsName
    iotHubName: iotHub.outputs.name
    telemetryConsumerGroup: telemetryConsumerGroup
    simulatorEnabled: simulatorEnabled
    simulatorDeviceCount: simulatorDeviceCount
    telemetryAlertThreshold: telemetryAlertThreshold
    telemetryRetentionDays: telemetryRetentionDays
  }
}

// Names and endpoints only: no output ever carries a key or connection string.
output AZURE_LOCATION string = location
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name
output AZURE_FUNCTION_APP_URL string = functionApp.outputs.url
output AZURE_IOTHUB_NAME string = iotHub.outputs.name
output AZURE_IOTHUB_HOST_NAME string = iotHub.outputs.hostName
output AZURE_STORAGE_ACCOUNT_NAME string = storage.outputs.name
